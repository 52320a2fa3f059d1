import type { Session } from '../session/index.js';

/** Local members of each room and local sessions of each user. */
export class MembershipIndex {
  private readonly rooms = new Map<string, Set<Session>>();
  private readonly users = new Map<string, Set<Session>>();

  roomMembers(room: string): ReadonlySet<Session> | undefined {
    return this.rooms.get(room);
  }

  userSessions(userId: string): ReadonlySet<Session> | undefined {
    return this.users.get(userId);
  }

  join(session: Session, room: string): void {
    session.joinRoom(room);
    addTo(this.rooms, room, session);
  }

  /** Removes a session from a room; true when the room has no local member left. */
  leave(session: Session, room: string): boolean {
    session.leaveRoom(room);
    return removeFrom(this.rooms, room, session);
  }

  addUser(session: Session, userId: string): void {
    addTo(this.users, userId, session);
  }

  removeUser(session: Session, userId: string): void {
    removeFrom(this.users, userId, session);
  }
}

function addTo(index: Map<string, Set<Session>>, key: string, session: Session): void {
  const members = index.get(key);
  if (members) members.add(session);
  else index.set(key, new Set([session]));
}

function removeFrom(index: Map<string, Set<Session>>, key: string, session: Session): boolean {
  const members = index.get(key);
  if (!members?.delete(session)) return false;
  if (members.size > 0) return false;
  index.delete(key);
  return true;
}
