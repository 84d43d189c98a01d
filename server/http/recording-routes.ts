// A terminal recording as the asciicast v2 file it is, over plain HTTP, for
// the web viewer's replay (a browser reads a plain body more simply than a
// Connect server stream). Same domain call and rules as RecordingService's
// ReadRecording: a technician reads their own recordings, an admin anyone's.
//
//   GET /recordings/{recordingId}   Authorization: Bearer <technician token>
//       → 200, body = the asciicast v2 text (application/x-asciicast)
//
// The id is not a secret and may sit in a page's URL; the token never does.
// Viewer tokens are refused: they open their session's live terminal only.
import type http from "node:http";
import { GuruError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/logging.ts";
import type { AuthFailureLimit } from "../auth/auth-failures.ts";
import type { TokenService } from "../auth/tokens.ts";
import { refuseViewerToken } from "../auth/viewer-tokens.ts";
import type { RecordingService } from "../domain/recordings.ts";
import { createBearerAuth, drained, sendRouteError, type Req, type Res } from "./bearer-routes.ts";

const recordingPathPrefix = "/recordings/";

export interface RecordingRoutesOptions {
  tokens: Pick<TokenService, "verify">;
  recordings: Pick<RecordingService, "read">;
  logger: Logger;
  authFailures?: AuthFailureLimit;
  trustedProxies: readonly string[];
}

export function createRecordingRoutes(options: RecordingRoutesOptions) {
  const { logger } = options;
  const authenticate = createBearerAuth({ ...options, refuse: refuseViewerToken });

  async function read(req: Req, res: Res, recordingId: string): Promise<void> {
    const principal = await authenticate(req);
    const out = res as http.ServerResponse;
    let gone = false;
    res.once("close", () => (gone = true));
    try {
      for await (const part of options.recordings.read(principal, recordingId)) {
        if ("recording" in part) {
          out.writeHead(200, {
            "content-type": "application/x-asciicast; charset=utf-8",
            "cache-control": "no-store",
            "x-guru-recording-truncated": String(part.recording.recordingTruncated),
          });
        } else if (!out.write(part.data)) {
          await drained(out);
        }
        if (gone) return;
      }
      out.end();
    } catch (err) {
      if (!out.headersSent) throw err;
      // Part of the body is out: a cut connection is the only honest answer left.
      logger.error({ err, recordingId }, "a recording broke off while it was sent");
      out.destroy();
    }
  }

  /** Handles /recordings/… requests; false for any other path. */
  return async function handle(req: Req, res: Res): Promise<boolean> {
    if (!(req.url ?? "").startsWith(recordingPathPrefix)) return false;
    const url = new URL(req.url ?? "/", "http://localhost");
    try {
      const match = /^\/recordings\/([^/]+)$/.exec(url.pathname);
      if (match === null) throw new GuruError("not_found", `no recording route ${url.pathname}: GET /recordings/{recordingId}`);
      if (req.method !== "GET") throw new GuruError("invalid", `${req.method} is not allowed here: GET /recordings/{recordingId}`);
      // A recording id is a UUID: nothing to decode, and anything else is refused as it came.
      await read(req, res, match[1]);
    } catch (err) {
      sendRouteError(res, err, logger);
    }
    return true;
  };
}
