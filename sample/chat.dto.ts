import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** `say`: a chat line. */
export class SayDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  text!: string;
}

/** `nick`: the display name shown with this connection's messages. */
export class NickDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(32)
  name!: string;
}
