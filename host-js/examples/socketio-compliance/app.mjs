// The Socket.IO compliance application (issue 14's fixed interface), shared by the
// runtime entry points next to this file: on /socket.io/, namespaces / and /custom;
// on connect emit `auth` with the handshake payload, echo `message` as `message-back`,
// acknowledge `message-with-ack` with its arguments; pingInterval 300, pingTimeout 200,
// maxPayload 1000000. On /engine.io/, a bare Engine.IO session echoes every message
// packet. Both over WebSocket and over HTTP long-polling (with the upgrade).
// Beyond the suites: `ask-me` makes the server ask the client back (the event `ask`
// with the same arguments, acknowledged by the client) and acknowledges `ask-me` with
// the client's answer (or {error: {code, message}}); the built-ins `join` and
// `room:message` serve room broadcasts.
export const config = {
  heartbeatInterval: 300,
  heartbeatTimeout: 200,
  maxPayloadSize: 1000000,
  routes: [
    { path: "/socket.io", codec: "socket.io" },
    { path: "/engine.io", codec: "engine.io" },
  ],
  socketIo: { namespaces: ["/", "/custom"] },
  messages: { connection: {}, message: {}, "message-with-ack": {}, "ask-me": {} },
};

export const handlers = {
  messages: {
    // Socket.IO's io.on("connection"): data is {namespace, auth}.
    connection(msg, ctx) {
      ctx.send({ event: "auth", data: msg.data.auth, namespace: msg.data.namespace });
    },
    // The request id of a Socket.IO event names its namespace: answer there.
    message(msg, ctx) {
      // A bare Engine.IO session (/engine.io/): echo every message packet.
      if (msg.client.route === "/engine.io") return void ctx.send({ event: "message", data: msg.data });
      ctx.send({ event: "message-back", data: msg.data, namespace: msg.requestId.sio });
    },
    "message-with-ack": (msg) => msg.data,
    // A server-requested ack, within the handler's own 5 s deadline.
    async "ask-me"(msg, ctx) {
      try {
        return await ctx.emitWithAck("ask", msg.data, { timeoutMs: 2000 });
      } catch (e) {
        return { error: { code: e.code, message: e.message } };
      }
    },
  },
};
