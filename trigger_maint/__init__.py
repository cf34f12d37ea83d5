"""trigger-maint: Fabric tasks that keep self-hosted Trigger.dev installations healthy."""

__version__ = "0.1.0"
