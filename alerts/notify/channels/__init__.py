"""Channel adapters: one module per provider, one `send()` each (alerts/notify/channels/base.py)."""

from __future__ import annotations

from alerts.notify.channels.base import Channel, Outgoing, SendResult


def build_channels(settings: dict, client=None) -> dict[str, Channel]:
    """Channel adapters for the configured settings (ChannelSettings by name); webhook always exists."""
    from alerts.notify.channels.email import EmailChannel
    from alerts.notify.channels.sms import SmsChannel
    from alerts.notify.channels.telegram import TelegramChannel
    from alerts.notify.channels.webhook import WebhookChannel
    from alerts.notify.channels.zalo import ZaloChannel

    kinds = {"email": EmailChannel, "telegram": TelegramChannel, "zalo": ZaloChannel, "sms": SmsChannel,
             "webhook": WebhookChannel}
    out: dict[str, Channel] = {}
    for name, s in settings.items():
        out[name] = kinds[name](s, client) if name != "email" else kinds[name](s)
    if "webhook" not in out:
        from alerts.notify.config import ChannelSettings

        out["webhook"] = WebhookChannel(ChannelSettings("webhook", {}), client)
    return out


__all__ = ["Channel", "Outgoing", "SendResult", "build_channels"]
