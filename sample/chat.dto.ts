import { IsBoolean, IsInt, IsNotEmpty, IsOptional, IsString, IsUUID, Length, Matches, Max, MaxLength, Min } from 'class-validator';
import { MAX_FILE_BYTES } from './file-shelf.js';

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

/** File names: no path separators or control characters, at most 100 characters. */
export const FILE_NAME_PATTERN = /^[^/\\\x00-\x1f\x7f]+$/;

/** Media types as browsers give them (`image/png`), or empty when the browser does not know. */
export const MEDIA_TYPE_PATTERN = /^([\w.+-]+\/[\w.+-]+)?$/;

/** `offer { room, name, type, size }`: what the session's next `share` upload is. */
export class OfferDto extends RoomDto {
  @IsString()
  @Length(1, 100)
  @Matches(FILE_NAME_PATTERN, { message: 'name may not contain / \\ or control characters' })
  name!: string;

  @IsString()
  @MaxLength(100)
  @Matches(MEDIA_TYPE_PATTERN, { message: 'type must be a media type like text/plain' })
  type!: string;

  @IsInt()
  @Min(1)
  @Max(MAX_FILE_BYTES)
  size!: number;
}

/** `fetch { id }`: a shared file's bytes, streamed to the asking session as `file:<id>`. */
export class FetchDto {
  @IsUUID()
  id!: string;
}
