// The Socket.IO compliance application (host-js/examples/socketio-compliance) on the
// reference `socket.io` npm server, for the side-by-side benchmark
// (host-js/bench/socketio-bench.mjs): on /socket.io/, namespaces / and /custom; on
// connect emit `auth` with the handshake payload, echo `message` as `message-back`,
// acknowledge `message-with-ack` with its arguments; pingInterval 300, pingTimeout 200,
// maxPayload 1000000. Plus what the benchmark uses of Switchboard's built-ins, written
// the way a socket.io application would: `join` {room} (ack {room}) and `room:message`
// {room, data}, broadcast to the other members of the room as the event `room:message`
// {room, from, data, timestamp} (Switchboard's push has the same fields).
//
//   PORT=3001 node host-js/bench/socketio-npm-server.mjs
import { createServer } from "node:http";
import { Server } from "socket.io";

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1000000,
  serveClient: false,
});

function application(nsp) {
  nsp.on("connection", (socket) => {
    socket.emit("auth", socket.handshake.auth);
    socket.on("message", (...args) => socket.emit("message-back", ...args));
    socket.on("message-with-ack", (...args) => {
      const ack = args.pop();
      if (typeof ack === "function") ack(...args);
    });
    socket.on("join", (data, ack) => {
      socket.join(data.room);
      if (typeof ack === "function") ack({ room: data.room });
    });
    socket.on("room:message", (msg, ack) => {
      const push = { room: msg.room, from: socket.id, data: msg.data, timestamp: new Date().toISOString() };
      socket.to(msg.room).emit("room:message", push);
      if (typeof ack === "function") ack({ room: msg.room });
    });
  });
}
application(io.of("/"));
application(io.of("/custom"));

const port = Number(process.env.PORT ?? 3001);
httpServer.listen(port, process.env.HOST ?? "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => io.close(() => process.exit(0)));
