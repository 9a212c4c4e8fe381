/*
 * Starts the rasa-webchat widget (served from our own origin as /static/vendor/webchat.js).
 * Kept in a file rather than inline because the page's CSP allows scripts from 'self' only.
 *
 * The login token comes from a same-origin, cookie-authenticated call, so it never appears in
 * the HTML, a URL or a cache. When a different shopper (or a guest) uses the same tab, the
 * widget's stored conversation is dropped so nobody continues someone else's chat.
 *
 * Chat tokens are short-lived (an hour at most) while the shop login lasts longer, so the page
 * fetches a fresh token before the current one expires, for as long as the shop session is
 * alive. The widget sends the object passed as `customData` with every message, so the new
 * token is swapped into that same object. When the shop session has ended (logout, expiry, a
 * revoked session) the endpoint answers without a token: the page drops the token and stops.
 * If another shopper signed in meanwhile (same browser, another tab), the page reloads so that
 * it shows, and chats as, whoever is signed in now.
 */
(function () {
  "use strict";

  var holder = document.getElementById("cartguard-chat");
  if (!holder || !window.WebChat || typeof window.WebChat.default !== "function") {
    return;
  }
  var OWNER_KEY = "cartguard_chat_owner";
  var WIDGET_KEY = "chat_session";
  var TOKEN_URL = "/api/chat-token";
  var MIN_DELAY_S = 15; // never ask more often than this
  var RETRY_DELAY_S = 30; // after a network error, while the current token still works

  var customData = {}; // the very object the widget sends with each message
  var owner = "anonymous";
  var refreshAt = 0; // ms since the epoch: when the token in customData is due for renewal
  var timer = null;
  var stopped = false;

  function forgetOtherShopper(who) {
    try {
      if (window.sessionStorage.getItem(OWNER_KEY) !== who) {
        window.sessionStorage.removeItem(WIDGET_KEY);
        window.sessionStorage.setItem(OWNER_KEY, who);
      }
    } catch (err) {
      /* storage disabled: the widget cannot keep a conversation either */
    }
  }

  function fetchToken() {
    return fetch(TOKEN_URL, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("chat token unavailable: " + response.status);
      }
      return response.json();
    });
  }

  function schedule(seconds) {
    if (timer !== null) {
      window.clearTimeout(timer);
    }
    timer = window.setTimeout(refresh, Math.max(MIN_DELAY_S, seconds) * 1000);
  }

  function stop() {
    stopped = true;
    delete customData.auth_token;
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
  }

  function accept(body) {
    var lifetime = Number(body.expires_in) || 0;
    customData.auth_token = body.token;
    // renew at three quarters of the lifetime: a late timer (sleeping laptop, background tab)
    // still has a quarter of it, and a tab checks again when it is shown or focused
    refreshAt = Date.now() + lifetime * 750;
    schedule(lifetime * 0.75);
  }

  function refresh() {
    timer = null;
    if (stopped) {
      return;
    }
    fetchToken()
      .then(function (body) {
        if (stopped) {
          return;
        }
        if (!body.token) {
          stop(); // signed out: the shop session is gone, so is the chat sign-in
          return;
        }
        if ((body.owner || "anonymous") !== owner) {
          stop();
          window.location.reload(); // someone else signed in on this browser
          return;
        }
        accept(body);
      })
      .catch(function () {
        if (!stopped) {
          schedule(RETRY_DELAY_S); // offline or a server hiccup: the session may still be alive
        }
      });
  }

  function refreshIfDue() {
    // a timer may have been held back while the tab was hidden or the computer slept
    if (!stopped && customData.auth_token && Date.now() >= refreshAt) {
      refresh();
    }
  }

  function start(body) {
    owner = body.owner || "anonymous";
    forgetOtherShopper(owner);
    if (body.token) {
      accept(body);
      document.addEventListener("visibilitychange", function () {
        if (document.visibilityState === "visible") {
          refreshIfDue();
        }
      });
      window.addEventListener("focus", refreshIfDue);
    } else {
      stopped = true; // a guest has nothing to refresh
    }
    window.WebChat.default(
      {
        socketUrl: holder.dataset.socketUrl,
        socketPath: holder.dataset.socketPath || "/socket.io/",
        customData: customData,
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

  fetchToken()
    .then(function (body) {
      start(body);
    })
    .catch(function () {
      start({ token: null, owner: "anonymous" });
    });
})();
