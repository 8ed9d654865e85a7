#!/usr/bin/python3
"""make-pki.py OUTDIR: the test PKI of StrataTLSTests, generated fresh for every test run.

Why generate instead of committing PEM files: committed certificates expire, and the
expiry cases here (`expired`, `notyet`) are relative to *today*. The keys are random on
every run; the structure (file names, names, extensions, who signs what) is fixed, and
OUTDIR/manifest.json lists every file with the case it exists for.

Run it with Debian's interpreter, /usr/bin/python3, which has python3-cryptography
(38.0.4 on Debian 12); a pyenv python3 earlier in PATH usually does not. Standard library
and `cryptography` only. Tests/TLSTests/Support/TestPKI.swift runs it once per test
process.

Everything is PEM and unencrypted. Certificate files hold the leaf first, then the
intermediates the peer needs ("full chain"); roots are never part of a chain file.
Keys are PKCS#8 ("PRIVATE KEY") except two, kept in the older formats on purpose so the
key-loading code sees all three: rsa-server.key is PKCS#1 ("RSA PRIVATE KEY") and
ecdsa-p384.key is SEC1 ("EC PRIVATE KEY").

SHA-1: cryptography 38 still signs with SHA-1 (it emits a CryptographyDeprecationWarning,
silenced below), so sha1.pem needs no detour through `openssl x509 -req -sha1`. Later
versions refuse (48 raises UnsupportedAlgorithm): then this script fails with a message
rather than quietly producing a SHA-256 certificate, and the signature algorithm of every
certificate is checked after signing.
"""

import datetime
import json
import os
import sys
import warnings

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from cryptography.exceptions import UnsupportedAlgorithm
    import cryptography
except ImportError as error:  # pragma: no cover - depends on the machine
    sys.stderr.write(
        "make-pki.py: python3-cryptography is missing (%s).\n"
        "Install it with `apt-get install python3-cryptography` (Debian), or run `make test`,\n"
        "and run this script with /usr/bin/python3, not a pyenv python3.\n" % error
    )
    sys.exit(3)

NOW = datetime.datetime.utcnow().replace(microsecond=0)
DAY = datetime.timedelta(days=1)

# Names every "good" server certificate carries. Clients in the tests connect to
# `localhost` or `strata.test`; IP SANs are there for clients that check them
# (mbedTLS 2.28 matches DNS names and the CN only).
SERVER_DNS = ["localhost", "strata.test"]
SERVER_IP = "127.0.0.1"

manifest = []  # (file, kind, case), in generation order


def name(common_name):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strata Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def ec_key(curve=None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def rsa_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def san(dns=(), ips=()):
    import ipaddress

    names = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return x509.SubjectAlternativeName(names)


class Issuer:
    """A certificate with its private key, able to sign others."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


def build(
    subject,
    public_key,
    issuer,
    *,
    ca=False,
    path_length=None,
    key_usage=None,
    eku=None,
    sans=None,
    not_before=None,
    not_after=None,
    hash_algorithm=None,
    self_key=None,
):
    """Builds and signs one certificate. `issuer` None means self-signed with `self_key`."""
    signer_key = self_key if issuer is None else issuer.key
    issuer_name = subject if issuer is None else issuer.cert.subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - DAY)
        .not_valid_after(not_after or NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    authority_public_key = signer_key.public_key()
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_public_key), critical=False
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if sans is not None:
        builder = builder.add_extension(sans, critical=False)
    algorithm = hash_algorithm or hashes.SHA256()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SHA-1's deprecation warning (sha1.pem)
        try:
            cert = builder.sign(signer_key, algorithm)
        except UnsupportedAlgorithm as error:
            raise SystemExit(
                "make-pki.py: cryptography %s refuses to sign with %s (%s). Run this script with\n"
                "/usr/bin/python3 and Debian's python3-cryptography (38 signs SHA-1), not %s."
                % (cryptography.__version__, algorithm.name, error, sys.executable)
            )
    if cert.signature_hash_algorithm.name != algorithm.name:
        raise SystemExit("make-pki.py: asked for a %s signature, got %s" % (algorithm.name, cert.signature_hash_algorithm.name))
    return cert


def ku(*, digital_signature=False, key_encipherment=False, cert_sign=False):
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


CA_KU = ku(cert_sign=True)
SERVER_KU = ku(digital_signature=True)
RSA_SERVER_KU = ku(digital_signature=True, key_encipherment=True)
SERVER_EKU = [ExtendedKeyUsageOID.SERVER_AUTH]
CLIENT_EKU = [ExtendedKeyUsageOID.CLIENT_AUTH]


def make_root(common_name):
    key = ec_key()
    cert = build(name(common_name), key.public_key(), None, ca=True, key_usage=CA_KU, self_key=key)
    return Issuer(cert, key)


def make_intermediate(common_name, root, *, ca=True):
    key = ec_key()
    cert = build(
        name(common_name),
        key.public_key(),
        root,
        ca=ca,
        path_length=0 if ca else None,
        # keyCertSign even on the CA:FALSE one, so only basicConstraints is wrong there.
        key_usage=CA_KU,
    )
    return Issuer(cert, key)


class Writer:
    def __init__(self, outdir):
        self.outdir = outdir

    def _write(self, file, data, kind, case):
        path = os.path.join(self.outdir, file)
        with open(path, "wb") as handle:
            handle.write(data)
        manifest.append({"file": file, "kind": kind, "case": case})

    def cert(self, file, certs, case):
        data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
        self._write(file, data, "chain" if len(certs) > 1 else "certificate", case)

    def ca(self, file, cert, case):
        self._write(file, cert.public_bytes(serialization.Encoding.PEM), "ca", case)

    def key(self, file, key, case, key_format="pkcs8"):
        formats = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,  # RSA PRIVATE KEY
            "sec1": serialization.PrivateFormat.TraditionalOpenSSL,  # EC PRIVATE KEY
        }
        data = key.private_bytes(serialization.Encoding.PEM, formats[key_format], serialization.NoEncryption())
        self._write(file, data, "key-" + key_format, case)


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: make-pki.py OUTDIR\n")
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    w = Writer(outdir)

    # --- Authorities -------------------------------------------------------------------
    root = make_root("Strata Test Root CA")
    intermediate = make_intermediate("Strata Test Intermediate CA", root)
    other_root = make_root("Strata Test Other Root CA")
    client_ca = make_root("Strata Test Client CA")
    not_ca = make_intermediate("Strata Test Not-A-CA Intermediate", root, ca=False)

    w.ca("root.pem", root.cert, "the trust anchor of every server-side case (ECDSA P-256, self-signed)")
    w.ca("intermediate.pem", intermediate.cert, "CA:TRUE pathlen:0, signed by root; issues the server leaves")
    w.ca("other-root.pem", other_root.cert, "a root no test trusts; issues untrusted.pem and client-untrusted.pem")
    w.ca("client-ca.pem", client_ca.cert, "the root a server trusts for client certificates (mTLS); issues client.pem")

    def leaf(common_name, issuer, *, key=None, sans=None, eku=SERVER_EKU, key_usage=SERVER_KU, **extra):
        key = key or ec_key()
        cert = build(name(common_name), key.public_key(), issuer, key_usage=key_usage, eku=eku, sans=sans, **extra)
        return cert, key

    good_sans = san(SERVER_DNS, [SERVER_IP])

    # --- The good server ---------------------------------------------------------------
    cert, key = leaf("localhost", intermediate, sans=good_sans)
    w.cert("server.pem", [cert, intermediate.cert], "good: ECDSA P-256 leaf (localhost, strata.test, 127.0.0.1; serverAuth) + intermediate")
    w.cert("server-leaf-only.pem", [cert], "missing intermediate: server.pem's leaf alone (use server.key)")
    w.key("server.key", key, "key of server.pem and server-leaf-only.pem")

    # --- Good variants: other key types, SNI -----------------------------------------
    cert, key = leaf("localhost", intermediate, key=rsa_key(2048), sans=good_sans, key_usage=RSA_SERVER_KU)
    w.cert("rsa-server.pem", [cert, intermediate.cert], "good: RSA 2048 leaf, same names, for ECDHE-RSA")
    w.key("rsa-server.key", key, "key of rsa-server.pem (PKCS#1)", key_format="pkcs1")

    cert, key = leaf("localhost", intermediate, key=ec_key(ec.SECP384R1()), sans=good_sans)
    w.cert("ecdsa-p384.pem", [cert, intermediate.cert], "good: ECDSA P-384 leaf, same names")
    w.key("ecdsa-p384.key", key, "key of ecdsa-p384.pem (SEC1)", key_format="sec1")

    cert, key = leaf("other.strata.test", intermediate, sans=san(["other.strata.test"]))
    w.cert("server2.pem", [cert, intermediate.cert], "good for other.strata.test only: the second certificate of SNI tests")
    w.key("server2.key", key, "key of server2.pem")

    # --- Untrusted ---------------------------------------------------------------------
    key = ec_key()
    cert = build(name("localhost"), key.public_key(), None, key_usage=SERVER_KU, eku=SERVER_EKU, sans=good_sans, self_key=key)
    w.cert("selfsigned.pem", [cert], "not trusted: self-signed leaf (CA:FALSE) for localhost")
    w.key("selfsigned.key", key, "key of selfsigned.pem")

    cert, key = leaf("localhost", other_root, sans=good_sans)
    w.cert("untrusted.pem", [cert], "not trusted: leaf for localhost issued by other-root.pem")
    w.key("untrusted.key", key, "key of untrusted.pem")

    # --- Validity dates ----------------------------------------------------------------
    cert, key = leaf("localhost", intermediate, sans=good_sans, not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    w.cert("expired.pem", [cert, intermediate.cert], "expired: not after = yesterday")
    w.key("expired.key", key, "key of expired.pem")

    cert, key = leaf("localhost", intermediate, sans=good_sans, not_before=NOW + 2 * DAY, not_after=NOW + 30 * DAY)
    w.cert("notyet.pem", [cert, intermediate.cert], "not yet valid: not before = tomorrow + 1 day")
    w.key("notyet.key", key, "key of notyet.pem")

    # --- Names -------------------------------------------------------------------------
    cert, key = leaf("api.example.org", intermediate, sans=san(["api.example.org"]))
    w.cert("wrongname.pem", [cert, intermediate.cert], "hostname mismatch: SAN DNS:api.example.org only (CN api.example.org)")
    w.key("wrongname.key", key, "key of wrongname.pem")

    cert, key = leaf("localhost", intermediate, sans=None)
    w.cert("cn-only.pem", [cert, intermediate.cert], "CN=localhost and no SAN: RFC 6125 clients refuse; mbedTLS 2.28 falls back to the CN")
    w.key("cn-only.key", key, "key of cn-only.pem")

    cert, key = leaf("*.strata.test", intermediate, sans=san(["*.strata.test"]))
    w.cert("wildcard.pem", [cert, intermediate.cert], "wildcard SAN DNS:*.strata.test: valid for a.strata.test, not strata.test nor a.b.strata.test")
    w.key("wildcard.key", key, "key of wildcard.pem")

    cert, key = leaf("*.test", intermediate, sans=san(["*.test"]))
    w.cert("bad-wildcard.pem", [cert, intermediate.cert], "wildcard over a whole TLD, SAN DNS:*.test: must not match strata.test")
    w.key("bad-wildcard.key", key, "key of bad-wildcard.pem")

    cert, key = leaf("a*.strata.test", intermediate, sans=san(["a*.strata.test"]))
    w.cert("partial-wildcard.pem", [cert, intermediate.cert], "partial-label wildcard, SAN DNS:a*.strata.test: must not match a.strata.test or ab.strata.test")
    w.key("partial-wildcard.key", key, "key of partial-wildcard.pem")

    # --- Chain and usage ---------------------------------------------------------------
    cert, key = leaf("localhost", not_ca, sans=good_sans)
    w.cert("intermediate-not-ca.pem", [cert, not_ca.cert], "leaf + an intermediate (signed by root) whose basicConstraints is CA:FALSE")
    w.key("intermediate-not-ca.key", key, "key of intermediate-not-ca.pem")

    cert, key = leaf("localhost", intermediate, sans=good_sans, eku=CLIENT_EKU)
    w.cert("eku-client-only.pem", [cert, intermediate.cert], "server certificate whose EKU is clientAuth only")
    w.key("eku-client-only.key", key, "key of eku-client-only.pem")

    cert, key = leaf("localhost", intermediate, key=rsa_key(1024), sans=good_sans, key_usage=RSA_SERVER_KU)
    w.cert("rsa1024.pem", [cert, intermediate.cert], "weak key: RSA 1024 leaf (mbedTLS's default profile wants 2048)")
    w.key("rsa1024.key", key, "key of rsa1024.pem")

    cert, key = leaf("localhost", intermediate, sans=good_sans, hash_algorithm=hashes.SHA1())
    w.cert("sha1.pem", [cert, intermediate.cert], "weak signature: leaf signed by the intermediate with ECDSA-SHA1")
    w.key("sha1.key", key, "key of sha1.pem")

    # --- Client certificates (mTLS) ----------------------------------------------------
    cert, key = leaf("strata-test-client", client_ca, sans=san(["client.strata.test"]), eku=CLIENT_EKU)
    w.cert("client.pem", [cert], "good client certificate (clientAuth), issued directly by client-ca.pem")
    w.key("client.key", key, "key of client.pem")

    cert, key = leaf("strata-test-client", other_root, sans=san(["client.strata.test"]), eku=CLIENT_EKU)
    w.cert("client-untrusted.pem", [cert], "client certificate issued by other-root.pem, which no server trusts")
    w.key("client-untrusted.key", key, "key of client-untrusted.pem")

    document = {
        "generator": "Tests/TLSTests/pki/make-pki.py",
        "cryptography": cryptography.__version__,
        "notes": [
            "chain/certificate files: leaf first, then intermediates; roots never included",
            "the good names are DNS:localhost, DNS:strata.test, IP:127.0.0.1",
            "keys are random per run; names, extensions and issuers are fixed",
        ],
        "files": manifest + [{"file": "manifest.json", "kind": "manifest", "case": "this list"}],
    }
    with open(os.path.join(outdir, "manifest.json"), "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
