/*
 * Every message the shopper types reaches the assistant, even when the replica that took it
 * dies before writing it down (see cartguard/channels/inflight.py).
 *
 * The widget hands each socket.io emit to window.CartguardDelivery.emit (web/build.mjs patches
 * the bundle's one emit method to do so). A user message gets an id of its own and is kept
 * until the channel sends its receipt ("message_received" with that id), which it does once
 * the message is written down. A message still without a receipt when the socket drops is
 * sent again, with the same id and resent: true, as soon as the socket is confirmed into the
 * same session again; the channel answers a copy of a message it already has with a receipt
 * only. Messages typed while the socket is away wait here too, instead of reaching the server
 * before the socket has asked for its session again.
 *
 * Against a server that sends no receipts (the stock channel) nothing is ever sent twice.
 */
(function () {
  "use strict";

  var RECEIPT = "message_received";
  var MESSAGE = "user_uttered";
  var KEEP_MS = 5 * 60 * 1000; // the channel does not replay older messages either
  var MAX_HELD = 20;

  var held = []; // {data, sent, at}: messages without a receipt, oldest first
  var watched = new WeakSet(); // the sockets whose events we listen to
  var confirmed = false; // the current connection has its session confirmed
  var receiptsSeen = false; // the server sends receipts: copies are safe to send

  function newId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b + 256).toString(16).slice(1);
      })
      .join("");
  }

  function sessionOf(body) {
    return body && body.session_id ? body.session_id : body;
  }

  function prune() {
    var now = Date.now();
    held = held.filter(function (entry) {
      return now - entry.at <= KEEP_MS;
    });
    if (held.length > MAX_HELD) {
      held = held.slice(held.length - MAX_HELD);
    }
  }

  function send(socket, entry) {
    if (entry.sent) {
      entry.data.resent = true;
    }
    entry.sent = true;
    socket.emit(MESSAGE, entry.data);
  }

  function watch(socket) {
    if (watched.has(socket)) {
      return;
    }
    watched.add(socket);
    // the widget sends messages only once its session is confirmed
    confirmed = socket.connected;
    socket.on(RECEIPT, function (body) {
      var id = body && body.message_id;
      receiptsSeen = true;
      held = held.filter(function (entry) {
        return entry.data.message_id !== id;
      });
    });
    socket.on("disconnect", function () {
      confirmed = false;
    });
    socket.on("session_confirm", function (body) {
      var session = sessionOf(body);
      confirmed = true;
      prune();
      held = held.filter(function (entry) {
        // a fresh session (an ended login, another shopper) does not inherit old messages;
        // without receipts from the server, a message once sent is never sent again
        return entry.data.session_id === session && (!entry.sent || receiptsSeen);
      });
      held.forEach(function (entry) {
        send(socket, entry);
      });
    });
  }

  function emit(socket, event, data) {
    watch(socket);
    if (event !== MESSAGE || !data || typeof data !== "object") {
      socket.emit(event, data);
      return;
    }
    var entry = {
      data: Object.assign({}, data, { message_id: newId() }),
      sent: false,
      at: Date.now()
    };
    held.push(entry);
    prune();
    if (confirmed && socket.connected) {
      send(socket, entry);
    }
  }

  window.CartguardDelivery = {
    emit: emit,
    held: function () {
      return held.length; // for tests and the curious: messages without a receipt
    }
  };
})();
