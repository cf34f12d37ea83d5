"""CLI: python -m tests.rig install|up|down|status|reset|env|endpoints|systemd."""

import argparse
import shlex
import sys
import time

from .config import KEY, KNOWN_HOSTS, REGISTRY, RigError
from .layouts import LAYOUTS
from .rig import Rig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rig", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install packages, Compose, images (idempotent)")
    up = sub.add_parser("up", help="start the registry and hosts 1..N")
    up.add_argument("--hosts", type=int, default=3)
    sub.add_parser("down", help="stop hosts, registry and builder")
    sub.add_parser("status", help="show what runs")
    reset = sub.add_parser("reset", help="fresh installation on host K")
    reset.add_argument("k", type=int)
    reset.add_argument("layout", choices=sorted(LAYOUTS))
    reset.add_argument("version", nargs="?")
    env = sub.add_parser("env", help="shell exports for reaching host K")
    env.add_argument("k", type=int)
    extra = sub.add_parser("endpoints", help="N more sshd endpoints on host K (0: stop them)")
    extra.add_argument("k", type=int)
    extra.add_argument("n", type=int)
    systemd = sub.add_parser("systemd", help="stand-in systemd-run on host K: on | off")
    systemd.add_argument("k", type=int)
    systemd.add_argument("state", choices=["on", "off"])
    args = parser.parse_args(argv)
    rig = Rig()
    started = time.monotonic()
    try:
        if args.command == "install":
            rig.install()
        elif args.command == "up":
            rig.up(args.hosts)
        elif args.command == "down":
            rig.down()
        elif args.command == "status":
            print(rig.status())
        elif args.command == "reset":
            host = rig.host(args.k)
            with host.lock():
                host.reset(args.layout, args.version)
        elif args.command == "env":
            print(env_exports(rig.host(args.k)))
            return 0
        elif args.command == "endpoints":
            from . import endpoints

            host = rig.host(args.k)
            if args.n:
                print("\n".join(endpoints.start(host, args.n)))
            else:
                endpoints.stop(host)
            print(f"known_hosts: {endpoints.KNOWN_HOSTS_FILE}", file=sys.stderr)
        elif args.command == "systemd":
            from . import systemd

            host = rig.host(args.k)
            (systemd.enable if args.state == "on" else systemd.disable)(host)
    except RigError as exc:
        print(f"rig: {exc}", file=sys.stderr)
        return 1
    if args.command != "status":
        print(f"rig {args.command}: done in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


def env_exports(host) -> str:
    """Shell exports for reaching host from a terminal."""
    values = {
        "TRIGGER_RIG_HOST": f"root@{host.address}:{host.port}",
        "TRIGGER_RIG_KEY": str(KEY),
        "TRIGGER_MAINT_ARGS": " ".join(host.fab_args()),
        "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
        "FABRIC_TRIGGER_REGISTRY": REGISTRY,
        "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
        "DOCKER_HOST": f"unix://{host.dir}/run/docker.sock",
    }
    lines = [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    ssh = f"ssh -p {host.port} -i {KEY} -o UserKnownHostsFile={KNOWN_HOSTS} root@{host.address}"
    lines.append(f"alias rig-ssh={shlex.quote(ssh)}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
