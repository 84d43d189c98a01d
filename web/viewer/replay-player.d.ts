// Types of replay-player.js for the tests that import it (the viewer page loads the .js as it is).
export interface CastEvent {
  time: number;
  code: string;
  data: string;
}

export function parseCast(text: string): { width: number; height: number; events: CastEvent[] };

export interface PlayerState {
  playing: boolean;
  ended: boolean;
  position: number;
  duration: number;
  speed: number;
  idleLimit: number;
}

export interface PlayerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface Player {
  play(): void;
  pause(): void;
  toggle(): void;
  setSpeed(value: number): void;
  setIdleLimit(seconds: number): void;
  state(): PlayerState;
}

export function createPlayer(options: {
  events: CastEvent[];
  sink: { output(text: string): void; resize(columns: number, rows: number): void; marker(text: string): void; reset(): void };
  onState?: (state: PlayerState) => void;
  clock?: PlayerClock;
  speed?: number;
  idleLimit?: number;
}): Player;
