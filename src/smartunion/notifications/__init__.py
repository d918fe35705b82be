"""Notifications to members (通知): a minimal outbox the portal and the API show.

The first capability that needs to tell a member something (an account opened or closed
in their name) put it here; the services issue's notification channels (SMS, WeChat)
deliver from the same table later (``delivered_at``).
"""
