"""Lets `fab -H host maintain` work in a clone: the trigger-maint tasks as this fabfile."""

from trigger_maint.tasks import ns  # noqa: F401
