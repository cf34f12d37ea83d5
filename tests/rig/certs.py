"""Let's Encrypt-style certificates with an exact expiry, laid out as certbot keeps them."""

import datetime
import shutil
import tempfile
from pathlib import Path

from . import proc

CA_CONFIG = """[ca]
default_ca = rig
[rig]
database = {tmp}/index.txt
new_certs_dir = {tmp}
serial = {tmp}/serial
default_md = sha256
policy = policy
unique_subject = no
x509_extensions = leaf
[policy]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{domain}
"""
RENEWAL = """# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = {etc}/archive/{domain}
cert = {etc}/live/{domain}/cert.pem
privkey = {etc}/live/{domain}/privkey.pem
chain = {etc}/live/{domain}/chain.pem
fullchain = {etc}/live/{domain}/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = 5c8f2d0e3b7a41c6a9e1f0d2b4c6e8a0
authenticator = standalone
server = https://127.0.0.1:14000/dir
key_type = ecdsa
"""


def make_certificate(root: Path, domain: str, days: float, etc: str = "/etc/letsencrypt"):
    """Write a certificate for domain expiring `days` from now (negative: expired) into root,
    the host-side folder that is `etc` inside the host."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    end = now + datetime.timedelta(days=days)
    start = min(end - datetime.timedelta(days=90), now - datetime.timedelta(hours=1))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "index.txt").write_text("")
        (t / "serial").write_text(f"{int(now.timestamp()):x}\n")
        (t / "ca.cnf").write_text(CA_CONFIG.format(tmp=tmp, domain=domain))
        proc.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", t / "privkey.pem",
                  "-subj", f"/CN={domain}", "-out", t / "csr.pem"])
        proc.run(["openssl", "ca", "-batch", "-selfsign", "-notext", "-config", t / "ca.cnf",
                  "-keyfile", t / "privkey.pem", "-in", t / "csr.pem", "-out", t / "cert.pem",
                  "-startdate", start.strftime("%Y%m%d%H%M%SZ"),
                  "-enddate", end.strftime("%Y%m%d%H%M%SZ")])
        cert = (t / "cert.pem").read_text()
        pems = {"cert": cert, "chain": cert, "fullchain": cert + cert,
                "privkey": (t / "privkey.pem").read_text()}
    for sub in ("archive", "live", "renewal"):
        shutil.rmtree(root / sub / domain, ignore_errors=True)
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "archive" / domain).mkdir()
    (root / "live" / domain).mkdir()
    for name, pem in pems.items():
        archived = root / "archive" / domain / f"{name}1.pem"
        archived.write_text(pem)
        archived.chmod(0o600 if name == "privkey" else 0o644)
        (root / "live" / domain / f"{name}.pem").symlink_to(f"../../archive/{domain}/{name}1.pem")
    (root / "renewal" / f"{domain}.conf").write_text(RENEWAL.format(etc=etc, domain=domain))
