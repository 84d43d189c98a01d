// The baseline beside `guru server` in the capacity bench: a bare `ws`
// server (no deflate, as the agent endpoint) answering every binary message
// with one of the same size, as the server answers a Heartbeat with an ack.
// Prints its port on stdout once listening.
import { WebSocketServer } from "ws";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("error", () => undefined);
  ws.on("message", (data: Buffer, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => process.stdout.write(`${(wss.address() as { port: number }).port}\n`));
process.on("SIGTERM", () => process.exit(0));
