import { type Code, ConnectError } from "@connectrpc/connect";
import { errorInfoOf } from "../../lib/api-errors.ts";

export interface RpcFailure {
  code: Code;
  message: string;
  /** From the ErrorInfo detail; "" when the error came without it. */
  reason: string;
  kind: string;
  metadata: Record<string, string>;
}

/** The Connect code, message and ErrorInfo detail a call failed with; fails the test if it succeeded. */
export async function errorOf(promise: Promise<unknown>): Promise<RpcFailure> {
  try {
    await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    const info = errorInfoOf(e);
    return { code: e.code, message: e.rawMessage, reason: info?.reason ?? "", kind: info?.kind ?? "", metadata: info?.metadata ?? {} };
  }
  throw new Error("expected the call to fail");
}
