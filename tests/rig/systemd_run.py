#!/usr/bin/python3
"""Stand-in systemd-run (trigger-maint test rig), installed as /usr/sbin/systemd-run on a host
by `python -m tests.rig systemd K on`. Like systemd 252's for a transient service: the
command runs detached from the caller (a session of its own, parented by a per-unit manager
standing in for PID 1), with a clean environment (PATH, LANG, INVOCATION_ID, SYSTEMD_EXEC_PID
plus --setenv), cwd /, umask 022, default signal dispositions, stdin /dev/null, stdout/stderr
to the journal (here: discarded) or to StandardOutput=/StandardError= files; `$VAR`, `${VAR}`
and `$$` expanded in the command line as in ExecStart=; a unit name in use refused; when the
main process exits, what is left of the unit is killed as KillMode= says (mixed: SIGKILL).
Loaded units are files in /run/systemd/transient; every start and exit is a JSON line in
/run/rig/systemd-units.jsonl (an exit lists the processes the unit left). Only options
trigger-maint could use are accepted."""

import ctypes
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import sys
import time
import uuid

VERSION = "systemd 252 (252.22-1~deb12u1)\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP " \
          "+GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD " \
          "+LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ " \
          "+ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified"
TRANSIENT = "/run/systemd/transient"
RECORD = "/run/rig/systemd-units.jsonl"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
NAME_CHARS = re.compile(r"[A-Za-z0-9:_.\\@-]")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SERVICE_TYPES = ("simple", "exec")  # systemd also has forking, oneshot, dbus, notify, idle
# Properties accepted with -p; systemd knows many more, the stand-in refuses them.
PROPERTIES = {"KillMode", "After", "Before", "Wants", "Requires", "StandardOutput",
              "StandardError", "StandardInput", "Type", "TimeoutStopSec", "RemainAfterExit",
              "Restart", "Description", "CollectMode", "WorkingDirectory", "Environment"}
KILL_MODES = ("control-group", "process", "mixed", "none")
# Refused: they change how the caller and the service are tied; the rig does not emulate them.
UNSUPPORTED = {"--user", "-H", "--host", "-M", "--machine", "--scope", "--slice",
               "--slice-inherit", "--wait", "--send-sighup", "--uid", "--gid", "--nice",
               "--working-directory", "-d", "--same-dir", "-t", "--pty", "-P", "--pipe", "-S",
               "--shell", "--path-property", "--socket-property", "--timer-property",
               "--on-active", "--on-boot", "--on-startup", "--on-unit-active",
               "--on-unit-inactive", "--on-calendar", "--on-timezone-change",
               "--on-clock-change", "--expand-environment"}
WITH_VALUE = {"-u": "--unit", "--unit": "--unit", "-p": "--property", "--property": "--property",
              "--description": "--description", "--service-type": "--service-type",
              "-E": "--setenv", "--setenv": "--setenv"}
FLAGS = {"--version", "-h", "--help", "--no-ask-password", "--no-block", "-r",
         "--remain-after-exit", "-q", "--quiet", "-G", "--collect"}


class Fail(Exception):
    pass


def parse(argv: list[str]) -> dict:
    """Options up to the first non-option (systemd-run's getopt stops there), then the
    command."""
    opts = {"unit": None, "description": None, "props": [], "setenv": [], "type": "simple",
            "flags": set()}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
        if not arg.startswith("--") and value:
            eq = "="
        if name in UNSUPPORTED:
            raise Fail(f"systemd-run: option '{name}' is not supported by the rig's stand-in")
        if name in FLAGS:
            if eq:
                raise Fail(f"systemd-run: option '{name}' doesn't allow an argument")
            opts["flags"].add({"-r": "--remain-after-exit", "-q": "--quiet", "-G": "--collect",
                               "-h": "--help"}.get(name, name))
        elif name in WITH_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise Fail(f"systemd-run: option '{name}' requires an argument")
                value = argv[i]
            key = WITH_VALUE[name]
            if key == "--unit":
                opts["unit"] = value
            elif key == "--description":
                opts["description"] = value
            elif key == "--service-type":
                opts["type"] = value
            elif key == "--property":
                opts["props"].append(value)
            else:
                opts["setenv"].append(value)
        else:
            raise Fail(f"systemd-run: unrecognized option '{name}'")
        i += 1
    opts["command"] = argv[i:]
    return opts


def mangle(name: str) -> str:
    """--unit NAME as systemd-run makes it a service name."""
    if not name.endswith(".service"):
        if re.search(r"\.(socket|device|mount|automount|swap|target|path|timer|slice|scope)$",
                     name):
            raise Fail("Failed to mangle unit name: Invalid argument")
        name += ".service"
    escaped = "".join(c if NAME_CHARS.match(c) else "".join(f"\\x{b:02x}" for b in c.encode())
                      for c in name)
    if escaped != name:
        print(f'Invalid unit name "{name}" escaped as "{escaped}" (maybe you should use '
              'systemd-escape?).', file=sys.stderr)
    if len(escaped) > 255 or escaped.startswith(".service"):
        raise Fail("Failed to mangle unit name: Invalid argument")
    return escaped


def properties(opts: dict) -> dict:
    props = {"Type": opts["type"], "KillMode": "control-group", "StandardOutput": "journal",
             "StandardError": "inherit", "TimeoutStopSec": "90", "CollectMode": "inactive"}
    if "--collect" in opts["flags"]:
        props["CollectMode"] = "inactive-or-failed"
    deps = {}
    for prop in opts["props"]:
        key, eq, value = prop.partition("=")
        if not eq:
            raise Fail(f"Not an assignment: {prop}")
        if key not in PROPERTIES:
            raise Fail(f"Unknown assignment: {prop}")
        if key in ("After", "Before", "Wants", "Requires"):
            deps.setdefault(key, []).extend(value.split())
            continue
        props[key] = value
    props.update({k: " ".join(v) for k, v in deps.items()})
    if props["Type"] not in SERVICE_TYPES:
        raise Fail(f"Failed to parse Type={props['Type']}: not supported by the rig's stand-in"
                   if props["Type"] in ("forking", "oneshot", "dbus", "notify", "notify-reload",
                                        "idle") else f"Invalid service type {props['Type']}")
    if props["KillMode"] not in KILL_MODES:
        raise Fail(f"Failed to parse KillMode={props['KillMode']}")
    for key in ("StandardOutput", "StandardError"):
        value = props[key]
        kind, _, path = value.partition(":")
        if kind in ("file", "append", "truncate"):
            if not path.startswith("/"):
                raise Fail(f"Failed to parse {key}={value}: path is not absolute")
        elif value not in ("inherit", "null", "journal", "kmsg", "journal+console",
                           "kmsg+console", "tty", "socket"):
            raise Fail(f"Failed to parse {key}={value}")
    return props


def clean_env(setenv: list[str]) -> dict:
    """The service's environment: what PID 1 gives every system service, then --setenv."""
    lang = "C.UTF-8"
    for conf in ("/etc/locale.conf", "/etc/default/locale"):
        try:
            for line in open(conf):
                if line.startswith("LANG="):
                    lang = line.split("=", 1)[1].strip().strip('"')
            break
        except OSError:
            continue
    env = {"PATH": DEFAULT_PATH, "LANG": lang}
    for item in setenv:
        name, eq, value = item.partition("=")
        if not eq:  # --setenv=NAME: the value from systemd-run's own environment
            if name not in os.environ:
                continue
            value = os.environ[name]
        if not ENV_NAME.match(name) or any(ord(c) < 32 and c not in "\t\n" for c in value):
            raise Fail(f"Environment variable assignment '{item}' is not valid.")
        env[name] = value
    return env


def expand_word(word: str, env: dict) -> str:
    """${NAME} anywhere and $$ replaced; a braceless $NAME inside a word stays as it is."""
    out, i = [], 0
    while i < len(word):
        c = word[i]
        if c == "$" and word[i + 1:i + 2] == "$":
            out.append("$")
            i += 2
        elif c == "$" and word[i + 1:i + 2] == "{":
            end = word.find("}", i + 2)
            if end < 0:
                out.append(word[i:])
                break
            out.append(env.get(word[i + 2:end], ""))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand(argv: list[str], env: dict) -> list[str]:
    """systemd's replace_env_argv: a word "$NAME" becomes the value split at whitespace (zero
    or more words); other words get expand_word."""
    out = []
    for word in argv:
        if word.startswith("$") and word[1:2] not in ("{", "$"):
            value = env.get(word[1:])
            if value:
                try:
                    out.extend(shlex.split(value))
                except ValueError:
                    out.extend(value.split())
            continue
        out.append(expand_word(word, env))
    return out


def record(event: dict) -> None:
    os.makedirs(os.path.dirname(RECORD), exist_ok=True)
    with open(RECORD, "a") as f:
        f.write(json.dumps({"t": round(time.time(), 3), **event}) + "\n")


def unit_file(unit: str, description: str, props: dict, env: dict, path: str,
              argv: list[str]) -> str:
    lines = ["# This is a transient unit file, created programmatically via the systemd API. "
             "Do not edit.", "[Unit]", f"Description={description}"]
    for dep in ("After", "Before", "Wants", "Requires"):
        if dep in props:
            lines.append(f"{dep}={props[dep]}")
    if props["CollectMode"] != "inactive":
        lines.append(f"CollectMode={props['CollectMode']}")
    lines += ["", "[Service]"]
    for key in ("Type", "KillMode", "StandardOutput", "StandardError", "TimeoutStopSec"):
        lines.append(f"{key}={props[key]}")
    lines += [f'Environment="{k}={v}"' for k, v in env.items()]
    lines.append("ExecStart=" + " ".join(shlex.quote(a) for a in [path, *argv[1:]]))
    return "\n".join(lines) + "\n"


def open_output(value: str, fallback: int | None) -> int:
    kind, _, path = value.partition(":")
    if kind == "append":
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
    if kind == "truncate":
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    if kind == "file":
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    if value == "inherit" and fallback is not None:
        return os.dup(fallback)
    return os.open("/dev/null", os.O_WRONLY | os.O_CLOEXEC)  # journal, null: not kept here


def service_child(path, argv, env, props, status_w) -> None:
    """In the forked child: become the service's main process (never returns)."""
    try:
        os.setsid()
        os.chdir("/")
        os.umask(0o022)
        for sig in range(1, signal.NSIG):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        stdin = os.open("/dev/null", os.O_RDONLY)
        try:
            out = open_output(props["StandardOutput"], None)
            same = props["StandardError"] == props["StandardOutput"] != "inherit"
            # the same file for both: one open file, as systemd's exec does
            err = os.dup(out) if same else open_output(props["StandardError"], out)
        except OSError as exc:
            os.write(status_w, f"E209 {exc}\n".encode())
            os._exit(209)
        for fd, target in ((stdin, 0), (out, 1), (err, 2)):
            os.dup2(fd, target)
        env = {**env, "INVOCATION_ID": uuid.uuid4().hex, "SYSTEMD_EXEC_PID": str(os.getpid())}
        os.execve(path, argv, env)
    except OSError as exc:
        os.write(status_w, f"E203 {exc}\n".encode())
    os._exit(203)


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state, ppid = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[:2]
                if state != "Z":  # a zombie is gone already, only not yet reaped
                    parents[int(entry)] = int(ppid)
            except (OSError, ValueError, IndexError):
                pass
    found, todo = [], [root]
    while todo:
        parent = todo.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found += kids
        todo += kids
    return found


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_rest(props: dict) -> list[str]:
    """What is left in the unit once its main process has ended, killed as KillMode= says;
    their command lines."""
    mode = props["KillMode"]
    me = os.getpid()
    left = [cmdline(pid) for pid in descendants(me)]
    if mode in ("process", "none"):
        return left
    if mode == "control-group":
        for pid in descendants(me):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + float(props["TimeoutStopSec"].rstrip("s") or 90)
        while descendants(me) and time.monotonic() < deadline:
            reap()
            time.sleep(0.1)
    for pid in descendants(me):  # mixed: at once; control-group: after TimeoutStopSec
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.1)
    reap()
    return left


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return


def manager(unit, path, argv, env, props, status_w) -> None:
    """Stands in for PID 1 for this unit: starts the main process, waits for it, cleans up."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, status_w)
    os.closerange(status_w + 1, 65536)
    try:  # PR_SET_CHILD_SUBREAPER: the unit's orphans come back to us, as to a cgroup
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except OSError:
        pass
    pid = os.fork()
    if pid == 0:
        service_child(path, argv, env, props, status_w)
    os.write(status_w, f"P{pid}\n".encode())
    os.close(status_w)
    record({"ev": "start", "unit": unit, "pid": pid, "manager": os.getpid(),
            "description": props.get("Description", ""), "argv": argv, "env": env,
            "properties": props})
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            status = 0
            break
        if done == pid:
            break
    left = kill_rest(props)
    if os.WIFSIGNALED(status):
        result = {"code": "killed", "signal": os.WTERMSIG(status)}
    else:
        result = {"code": "exited", "status": os.WEXITSTATUS(status)}
    failed = not (result["code"] == "exited" and result["status"] == 0)
    if not failed or props["CollectMode"] == "inactive-or-failed":
        try:
            os.unlink(os.path.join(TRANSIENT, unit))
        except FileNotFoundError:
            pass
        state = "unloaded"
    else:
        state = "failed"
    record({"ev": "exit", "unit": unit, "pid": pid, "state": state, **result,
            "left": left})


def main(argv: list[str]) -> int:
    opts = parse(argv)
    if "--help" in opts["flags"]:
        print("systemd-run [OPTIONS...] COMMAND [ARGUMENTS...] (rig stand-in)")
        return 0
    if "--version" in opts["flags"]:
        print(VERSION)
        return 0
    if not os.path.isdir("/run/systemd/system"):
        raise Fail("System has not been booted with systemd as init system (PID 1). "
                   "Can't operate.\nFailed to connect to bus: Host is down")
    if os.geteuid() != 0:
        raise Fail("Failed to start transient service unit: Interactive authentication "
                   "required.")
    if not opts["command"]:
        raise Fail("Command line to execute required.")
    props = properties(opts)
    env = clean_env(opts["setenv"])
    path = opts["command"][0]
    if "/" not in path:
        found = shutil.which(path)
        if not found:
            raise Fail(f"Failed to find executable {path}: No such file or directory")
        path = found
    else:
        path = os.path.abspath(path)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise Fail(f"Failed to find executable {opts['command'][0]}: "
                       + ("Permission denied" if os.path.exists(path)
                          else "No such file or directory"))
    command = expand(opts["command"], env)
    unit = mangle(opts["unit"]) if opts["unit"] else f"run-u{uuid.uuid4().int % 100000}.service"
    description = opts["description"] or props.get("Description") or " ".join(opts["command"])
    props["Description"] = description
    os.makedirs(TRANSIENT, exist_ok=True)
    with open(os.path.join(TRANSIENT, ".rig-lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        unit_path = os.path.join(TRANSIENT, unit)
        if os.path.exists(unit_path):
            raise Fail(f"Failed to start transient service unit: Unit {unit} was already "
                       "loaded or has a fragment file.")
        with open(unit_path, "w") as f:
            f.write(unit_file(unit, description, props, env, path, command))
    status_r, status_w = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(status_r)
        os.setsid()
        if os.fork():
            os._exit(0)
        try:
            manager(unit, path, command, env, props, status_w)
        finally:
            os._exit(0)
    os.close(status_w)
    os.waitpid(first, 0)
    chunks = []
    while chunk := os.read(status_r, 4096):
        chunks.append(chunk)
    os.close(status_r)
    report = b"".join(chunks).decode(errors="replace")
    if "--quiet" not in opts["flags"]:
        print(f"Running as unit: {unit}", file=sys.stderr)
    if "\nE" in "\n" + report and props["Type"] == "exec":
        raise Fail(f"Job for {unit} failed because the control process exited with error "
                   f"code.\nSee \"systemctl status {unit}\" and \"journalctl -xeu {unit}\" "
                   "for details.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Fail as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        print(f"systemd-run: {exc}", file=sys.stderr)
        sys.exit(1)
