#!/usr/bin/python3
# Writes hashes.txt and hashes-unsupported.txt, the crypt(3) vectors of
# auth's tests, with tools that share no code with popper. Run it with
# Debian's python (it needs python3-passlib and the deprecated crypt
# module, which pyenv builds may lack), from this directory:
#
#     apt-get install whois python3-passlib argon2 openssl
#     /usr/bin/python3 hashes-gen.py
#
# Salts are random, so every run writes different vectors; each one is
# checked here, with libxcrypt's crypt(3) where it knows the format and
# with passlib otherwise, before it is written.
import crypt
import hashlib
import os
import secrets
import subprocess
import warnings

warnings.filterwarnings("ignore")
os.environ["PASSLIB_BUILTIN_BCRYPT"] = "enabled"
from passlib import hash as ph  # noqa: E402

ph.bcrypt.set_backend("builtin")  # passlib's own bcrypt, not libxcrypt's

PASSWORDS = [
    "password123",
    "correct horse battery staple",
    "pässwörd€",
    "a",
    " ",
    "  spaces around  ",
    "日本語のパスワード",
    "p@$$w0rd!#%&*()'\"\\",
    "8chars!!",
    "sixteen chars ok",
    "x" * 100,
]
SHORT = ["password123", "pässwörd€", "a", " spaced out "]
ALPHA = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def salt(n):
    return "".join(secrets.choice(ALPHA) for _ in range(n))


def run(args, pw):
    return subprocess.run(args, input=pw.encode(), capture_output=True, check=True).stdout.decode().strip()


def mkpasswd(method, rounds=None):
    args = ["mkpasswd", "-s", "-m", method] + (["-R", str(rounds)] if rounds else [])
    return lambda pw: run(args, pw)


def openssl(flag):
    return lambda pw: run(["openssl", "passwd", flag, "-stdin"], pw)


def argon2(variant, t, m, p):
    return lambda pw: run(["argon2", salt(16), variant, "-t", str(t), "-m", str(m), "-p", str(p), "-e"], pw)


def sunmd5(rounds, bare=False):
    def make(pw):
        h = ph.sun_md5_crypt(salt=salt(8), rounds=rounds, bare_salt=bare)
        h.checksum = h._calc_checksum(pw)
        return h.to_string()
    return make


def scrypt7(log_n, r, p):
    # libxcrypt's $7$: log2(N) in one character, r and p in five (30 bits,
    # least significant first), the salt used as written, and the 32-byte
    # key in little-endian base 64; the key from hashlib's (OpenSSL's)
    # scrypt, the line checked with libxcrypt's crypt(3).
    def enc(v, n):
        return "".join(ALPHA[(v >> (6 * i)) & 63] for i in range(n))

    def make(pw):
        s = salt(22)
        key = hashlib.scrypt(pw.encode(), salt=s.encode(), n=1 << log_n, r=r, p=p, dklen=32)
        out = ""
        for i in range(0, 32, 3):
            chunk = key[i:i + 3]
            v = int.from_bytes(chunk, "little")
            out += enc(v, (len(chunk) * 8 + 5) // 6)
        return f"$7${ALPHA[log_n]}{enc(r, 5)}{enc(p, 5)}{s}${out}"
    return make


def libc(pw, h):
    return crypt.crypt(pw, h) == h


def passlib(handler):
    return lambda pw, h: handler.verify(pw, h)


# name: (command, passwords, checker). The name says which command made a
# line; COMMANDS below is the header that spells each one out.
METHODS = {
    "mkpasswd-descrypt": (mkpasswd("descrypt"), PASSWORDS + [""], libc),
    "python-crypt-des": (lambda pw: crypt.crypt(pw, crypt.mksalt(crypt.METHOD_CRYPT)), SHORT + ["password"], libc),
    "mkpasswd-bsdicrypt": (mkpasswd("bsdicrypt"), PASSWORDS, libc),
    "mkpasswd-bsdicrypt-R1": (mkpasswd("bsdicrypt", 1), SHORT, libc),
    "mkpasswd-md5crypt": (mkpasswd("md5crypt"), PASSWORDS + [""], libc),
    "openssl-1": (openssl("-1"), SHORT, libc),
    "mkpasswd-sha256crypt": (mkpasswd("sha256crypt"), PASSWORDS + [""], libc),
    "mkpasswd-sha256crypt-R1000": (mkpasswd("sha256crypt", 1000), SHORT, libc),
    "mkpasswd-sha256crypt-R12345": (mkpasswd("sha256crypt", 12345), SHORT[:2], libc),
    "openssl-5": (openssl("-5"), SHORT, libc),
    "mkpasswd-sha512crypt": (mkpasswd("sha512crypt"), PASSWORDS + [""], libc),
    "mkpasswd-sha512crypt-R1000": (mkpasswd("sha512crypt", 1000), SHORT, libc),
    "mkpasswd-sha512crypt-R5000": (mkpasswd("sha512crypt", 5000), SHORT[:2], libc),
    "openssl-6": (openssl("-6"), SHORT, libc),
    "python-crypt-sha256-rounds5000": (lambda pw: crypt.crypt(pw, "$5$rounds=5000$" + salt(16)), SHORT[:2], libc),
    "python-crypt-sha512-rounds5000": (lambda pw: crypt.crypt(pw, "$6$rounds=5000$" + salt(16)), SHORT[:2], libc),
    "mkpasswd-bcrypt-R4": (mkpasswd("bcrypt", 4), PASSWORDS, libc),
    "mkpasswd-bcrypt": (mkpasswd("bcrypt"), SHORT[:2], libc),
    "mkpasswd-bcrypt-a-R4": (mkpasswd("bcrypt-a", 4), SHORT, libc),
    "passlib-bcrypt-2y": (lambda pw: ph.bcrypt.using(ident="2y", rounds=4).hash(pw), SHORT + ["x" * 100], passlib(ph.bcrypt)),
    "mkpasswd-sunmd5": (mkpasswd("sunmd5"), SHORT[:2], libc),
    "mkpasswd-sunmd5-R5000": (mkpasswd("sunmd5", 5000), SHORT[2:], libc),
    "passlib-sun_md5_crypt": (sunmd5(0), PASSWORDS, passlib(ph.sun_md5_crypt)),
    "passlib-sun_md5_crypt-rounds": (sunmd5(1000), SHORT, passlib(ph.sun_md5_crypt)),
    "mkpasswd-yescrypt-R1": (mkpasswd("yescrypt", 1), PASSWORDS + [""], libc),
    "mkpasswd-yescrypt": (mkpasswd("yescrypt"), SHORT[1:2], libc),
    "mkpasswd-scrypt-R6": (mkpasswd("scrypt", 6), SHORT[1:2], libc),
    "python-hashlib-scrypt": (scrypt7(10, 8, 1), PASSWORDS + [""], libc),
    "python-hashlib-scrypt-p2": (scrypt7(9, 4, 2), SHORT[:2], libc),
    "mkpasswd-nt": (mkpasswd("nt"), PASSWORDS + [""], libc),
    "passlib-sha1_crypt": (lambda pw: ph.sha1_crypt.using(rounds=5000).hash(pw), PASSWORDS + [""], passlib(ph.sha1_crypt)),
    "argon2-id": (argon2("-id", 3, 12, 1), SHORT, None),
    "argon2-i": (argon2("-i", 2, 10, 2), SHORT[:2], None),
    "argon2-d": (argon2("-d", 2, 10, 1), SHORT[:2], None),
}

# Formats popper knowingly does not check: CheckHash must say
# ErrUnknownHash for these even with the right password.
UNSUPPORTED = {
    "passlib-sun_md5_crypt-bare": (sunmd5(0, bare=True), SHORT[:2], passlib(ph.sun_md5_crypt)),
    "passlib-sun_md5_crypt-bare-rounds": (sunmd5(1000, bare=True), SHORT[:1], passlib(ph.sun_md5_crypt)),
    "mkpasswd-gost-yescrypt": (mkpasswd("gost-yescrypt"), SHORT[:1], libc),
    "argon2-id-v10": (lambda pw: run(["argon2", salt(16), "-id", "-v", "10", "-t", "2", "-m", "10", "-e"], pw), SHORT[:1], None),
}

COMMANDS = """\
# crypt(3) test vectors for auth.CheckHash, written by hashes-gen.py
# (random salts; each checked with libxcrypt's crypt(3) or passlib first).
# Lines: method<TAB>password<TAB>hash. The method names the command:
#   mkpasswd-M           printf %s PASSWORD | mkpasswd -s -m M            (whois, libxcrypt)
#   mkpasswd-M-RN        printf %s PASSWORD | mkpasswd -s -m M -R N
#   openssl-N            printf %s PASSWORD | openssl passwd -N -stdin
#   python-crypt-des     /usr/bin/python3: crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_CRYPT))
#   python-crypt-shaN-rounds5000
#                        /usr/bin/python3: crypt.crypt(PASSWORD, "$5$rounds=5000$" or "$6$rounds=5000$" + SALT16)
#   python-hashlib-scrypt[-p2]
#                        $7$ built around hashlib.scrypt(PASSWORD, salt=SALT22, n=2**10, r=8, p=1
#                        or n=2**9, r=4, p=2, dklen=32) (scrypt7 in hashes-gen.py), checked by crypt(3)
#   passlib-bcrypt-2y    passlib.hash.bcrypt (builtin backend).using(ident="2y", rounds=4).hash(PASSWORD)
#   passlib-sun_md5_crypt[-rounds][-bare]
#                        passlib.hash.sun_md5_crypt(salt=8 chars, rounds=0 or 1000,
#                        bare_salt=False or True), checksum from _calc_checksum(PASSWORD)
#   passlib-sha1_crypt   passlib.hash.sha1_crypt.using(rounds=5000).hash(PASSWORD)
#   argon2-V             printf %s PASSWORD | argon2 SALT16 -V -t T -m M -p P -e
#                        (Debian's argon2, libargon2: id t=3 m=12 p=1, i t=2 m=10 p=2, d t=2 m=10 p=1)
#   argon2-id-v10        the same with -v 10 -t 2 -m 10
"""


def write(path, methods, intro):
    with open(path, "w") as out:
        out.write(COMMANDS + intro)
        for name, (make, passwords, check) in methods.items():
            for pw in passwords:
                h = make(pw)
                assert "\t" not in pw and "\n" not in pw
                if check is not None and not check(pw, h):
                    raise SystemExit(f"{name}: {pw!r} does not verify {h}")
                out.write(f"{name}\t{pw}\t{h}\n")


write("hashes.txt", METHODS, "# Every line must verify, and no other password may.\n")
write("hashes-unsupported.txt", UNSUPPORTED, "# Formats CheckHash knowingly refuses with ErrUnknownHash.\n")
