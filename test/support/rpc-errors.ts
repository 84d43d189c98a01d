import { type Code, ConnectError } from "@connectrpc/connect";

/** The Connect code and message a call failed with; fails the test if it succeeded. */
export async function errorOf(promise: Promise<unknown>): Promise<{ code: Code; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
  throw new Error("expected the call to fail");
}
