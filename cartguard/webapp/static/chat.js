/*
 * Starts the rasa-webchat widget (served from our own origin as /static/vendor/webchat.js).
 * Kept in a file rather than inline because the page's CSP allows scripts from 'self' only.
 *
 * The login token comes from a same-origin, cookie-authenticated call, so it never appears in
 * the HTML, a URL or a cache. When a different shopper (or a guest) uses the same tab, the
 * widget's stored conversation is dropped so nobody continues someone else's chat.
 */
(function () {
  "use strict";

  var holder = document.getElementById("cartguard-chat");
  if (!holder || !window.WebChat || typeof window.WebChat.default !== "function") {
    return;
  }
  var OWNER_KEY = "cartguard_chat_owner";
  var WIDGET_KEY = "chat_session";

  function forgetOtherShopper(owner) {
    try {
      if (window.sessionStorage.getItem(OWNER_KEY) !== owner) {
        window.sessionStorage.removeItem(WIDGET_KEY);
        window.sessionStorage.setItem(OWNER_KEY, owner);
      }
    } catch (err) {
      /* storage disabled: the widget cannot keep a conversation either */
    }
  }

  function start(token, owner) {
    forgetOtherShopper(owner);
    window.WebChat.default(
      {
        socketUrl: holder.dataset.socketUrl,
        socketPath: holder.dataset.socketPath || "/socket.io/",
        customData: token ? { auth_token: token } : {},
        initPayload: "/greet",
        title: "Cartguard assistant",
        subtitle: "Automated help with your orders",
        inputTextFieldHint: "Ask about an order, an invoice, a refund...",
        showMessageDate: false,
        mainColor: "#1f6f5c",
        userBackgroundColor: "#1f6f5c",
        userTextColor: "#ffffff",
        params: { storage: "session" }
      },
      null
    );
  }

  fetch("/api/chat-token", {
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" }
  })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("chat token unavailable: " + response.status);
      }
      return response.json();
    })
    .then(function (body) {
      start(body.token || null, body.owner || "anonymous");
    })
    .catch(function () {
      start(null, "anonymous");
    });
})();
