import { IsBoolean, IsNotEmpty, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';

/** Room names: 1–32 characters of lower-case letters, digits and dashes (`lobby`, `team-7`). */
export const ROOM_PATTERN = /^[a-z0-9-]+$/;

/** `leave { room }`. */
export class RoomDto {
  @IsString()
  @Length(1, 32)
  @Matches(ROOM_PATTERN, { message: 'room may contain only a-z, 0-9 and -' })
  room!: string;
}

/** `join { room, quiet? }`: `quiet` joins without telling the room (a page rejoining after a new session). */
export class JoinDto extends RoomDto {
  @IsOptional()
  @IsBoolean()
  quiet?: boolean;
}

/** `say { room, text }`: a chat line to a room the session is in. */
export class SayDto extends RoomDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(500)
  text!: string;
}

/** `nick { name, quiet? }`: the display name shown with this session's messages. */
export class NickDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(32)
  name!: string;

  @IsOptional()
  @IsBoolean()
  quiet?: boolean;
}
