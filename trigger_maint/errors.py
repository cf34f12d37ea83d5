"""Errors that end a phase, each with the exit code it stands for."""

CHECK_FAILED = 1  # a check failed or could not run (status, verify, research advisories)
INTERRUPTED = 130  # Ctrl-C


class MaintError(Exception):
    """A phase could not do its job; the message is one line for the operator."""

    exit_code = 5


class ConfigError(MaintError):
    """Bad configuration or usage: nothing was run."""

    exit_code = 2


class ConnectError(MaintError):
    """The host could not be reached or authenticated, or its key is not trusted."""

    exit_code = 3


class UnsafeError(MaintError):
    """Refused before any change because going on would not be safe."""

    exit_code = 4


class OperationError(MaintError):
    """A change failed on the host (after restoring what it could)."""

    exit_code = 5


KINDS = {"config": ConfigError, "refused": UnsafeError, "failed": OperationError}
