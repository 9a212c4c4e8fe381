"""The web service: the shop's webchat page, the demo login, and the secure forms behind links.

Card numbers, addresses and (for public channels) one-time codes are typed here, on a page of
ours, never into a chat. Security headers and CSRF checks live in :mod:`.security` as middleware
so no route can forget them; results go back to the conversation through :mod:`.outbox`.
"""
