"""A test AWS endpoint that checks SigV4 the way AWS does, with the REAL keys.

It stands for S3 (PutObject, GetObject, presigned URLs) and a Bedrock-shaped JSON API
(POST /model/<id>/invoke) on one HTTPS port. Every request's signature is recomputed
with botocore's own signer (SigV4Auth / S3SigV4Auth / S3SigV4QueryAuth) over the
request as received, restricted to the headers it says it signed; aws-chunked bodies
have each chunk signature checked with an independent implementation here. A request
that does not verify gets 403 SignatureDoesNotMatch, as from AWS.

Usage: server.py CERT KEY ACCESS_KEY_ID SECRET [SESSION_TOKEN]
Prints `PORT <n>` when listening. GET /_stats answers what it saw (JSON).
"""

import hashlib
import hmac
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CERT, KEY, AKID, SECRET = sys.argv[1:5]
TOKEN = sys.argv[5] if len(sys.argv) > 5 else None
CREDS = Credentials(AKID, SECRET, TOKEN)
OBJECTS = {}
# Temporary keys this endpoint's STS gave (AssumeRole): key id -> (secret, token).
ISSUED = {}
STATS = {"requests": [], "largest_chunk": 0}
LOCK = threading.Lock()
EMPTY = hashlib.sha256(b"").hexdigest()


def credentials_for(akid):
    """The keys a request signed with `akid` must verify with: the real ones, or
    temporary ones STS issued here."""
    if akid == AKID:
        return CREDS
    if akid in ISSUED:
        secret, token = ISSUED[akid]
        return Credentials(akid, secret, token)
    return None


def parse_authorization(value):
    algorithm, _, rest = value.partition(" ")
    fields = dict(p.strip().split("=", 1) for p in rest.split(","))
    akid, date, region, service, _ = fields["Credential"].split("/")
    return akid, date, region, service, fields["SignedHeaders"].split(";"), fields["Signature"]


def hmac256(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(date, region, service):
    k = hmac256(("AWS4" + SECRET).encode(), date)
    k = hmac256(k, region)
    k = hmac256(k, service)
    return hmac256(k, "aws4_request")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def answer(self, status, body, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def refuse(self, why):
        body = f"<Error><Code>SignatureDoesNotMatch</Code><Message>{why}</Message></Error>".encode()
        with LOCK:
            STATS["requests"].append({"path": self.path, "refused": why})
        self.answer(403, body, "application/xml")

    def verify(self, body):
        """The request's signature, as AWS checks it; None when it verifies."""
        url = f"https://{self.headers['Host']}{self.path}"
        split = urlsplit(url)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if "X-Amz-Signature" in query:
            akid, date, region, service, _ = query["X-Amz-Credential"].split("/")
            creds = credentials_for(akid)
            if creds is None:
                return f"presigned with key id {akid}"
            if creds.token and query.get("X-Amz-Security-Token") != creds.token:
                return "the session token is missing or wrong"
            given = query["X-Amz-Signature"]
            stripped = "&".join(p for p in split.query.split("&") if not p.startswith("X-Amz-Signature="))
            request = AWSRequest(method=self.command, url=f"{split.scheme}://{split.netloc}{split.path}?{stripped}",
                                 headers={"host": self.headers["Host"]})
            request.context["timestamp"] = query["X-Amz-Date"]
            auth = S3SigV4QueryAuth(creds, service, region, expires=int(query["X-Amz-Expires"]))
            canonical = auth.canonical_request(request)
            expected = auth.signature(auth.string_to_sign(request, canonical), request)
            return None if hmac.compare_digest(expected, given) else "presigned signature"
        header = self.headers.get("Authorization", "")
        if not header.startswith("AWS4-HMAC-SHA256 "):
            return "no SigV4 Authorization header"
        akid, date, region, service, signed, given = parse_authorization(header)
        creds = credentials_for(akid)
        if creds is None:
            return f"signed with key id {akid}"
        if creds.token and self.headers.get("X-Amz-Security-Token") != creds.token:
            return "the session token is missing or wrong"
        headers = {name: ",".join(self.headers.get_all(name)) for name in signed}
        request = AWSRequest(method=self.command, url=url, headers=headers, data=body)
        request.context["timestamp"] = self.headers["X-Amz-Date"]
        cls = S3SigV4Auth if service == "s3" else SigV4Auth
        auth = cls(creds, service, region)
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, given):
            return "header signature"
        self.seed = (given, date, region, service)
        return None

    def decode_chunks(self, body, signed, trailer):
        """The payload of an aws-chunked body; each chunk signature checked when signed,
        and (with `trailer`) the trailing checksum and its signature."""
        out, pos = b"", 0
        previous, date, region, service = self.seed
        key = signing_key(date, region, service)
        scope = f"{date}/{region}/{service}/aws4_request"
        stamp = self.headers["X-Amz-Date"]
        while True:
            end = body.index(b"\r\n", pos)
            head = body[pos:end].decode()
            size_text, _, ext = head.partition(";")
            size = int(size_text, 16)
            data = body[end + 2:end + 2 + size]
            with LOCK:
                STATS["largest_chunk"] = max(STATS["largest_chunk"], size)
            if signed:
                sig = ext.split("chunk-signature=")[1]
                to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous, EMPTY,
                                     hashlib.sha256(data).hexdigest()])
                expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, sig):
                    raise ValueError("chunk signature")
                previous = sig
            out += data
            pos = end + 2 + size
            if size == 0 and trailer:
                return out, self.check_trailer(body[pos:], out, key, stamp, scope, previous, signed)
            if size == 0:
                return out, None
            if body[pos:pos + 2] != b"\r\n":
                raise ValueError("chunk framing")
            pos += 2

    def check_trailer(self, rest, payload, key, stamp, scope, previous, signed):
        """The trailing headers: the checksum must match the payload; signed, the
        trailer signature must verify with the real key."""
        import base64
        import zlib
        lines = rest.split(b"\r\n")
        headers = {}
        for line in lines:
            if not line:
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        crc = base64.b64encode(zlib.crc32(payload).to_bytes(4, "big")).decode()
        if headers.get("x-amz-checksum-crc32", crc) != crc:
            raise ValueError("trailer checksum")
        if signed:
            canonical = "".join(f"{k}:{v}\n" for k, v in headers.items() if k != "x-amz-trailer-signature")
            to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", stamp, scope, previous,
                                  hashlib.sha256(canonical.encode()).hexdigest()])
            expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get("x-amz-trailer-signature", "")):
                raise ValueError("trailer signature")
        return sorted(headers)

    def assume_role(self, body):
        """STS AssumeRole (2011-06-15): temporary keys for the role, in STS's XML."""
        import datetime
        import secrets
        form = dict(parse_qsl(body.decode()))
        akid = "ASIA" + secrets.token_hex(8).upper()
        secret, token = secrets.token_urlsafe(30), "FQoG" + secrets.token_urlsafe(40)
        with LOCK:
            ISSUED[akid] = (secret, token)
            STATS["requests"][-1]["assumed"] = form.get("RoleArn")
            STATS["requests"][-1]["external_id"] = form.get("ExternalId")
        expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = (f"<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>"
               f"<Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
               f"<SessionToken>{token}</SessionToken><Expiration>{expires}</Expiration></Credentials>"
               f"<AssumedRoleUser><Arn>{form.get('RoleArn')}/egret</Arn></AssumedRoleUser>"
               f"</AssumeRoleResult></AssumeRoleResponse>").encode()
        return self.answer(200, xml, "text/xml")

    def handle_any(self):
        if self.path == "/_stats":
            with LOCK:
                return self.answer(200, json.dumps(STATS).encode())
        body = self.read_body()
        why = self.verify(body)
        if why:
            return self.refuse(why)
        mode = self.headers.get("X-Amz-Content-SHA256")
        with LOCK:
            key_id = parse_authorization(self.headers["Authorization"])[0] if self.headers.get("Authorization", "").startswith("AWS4") else None
            STATS["requests"].append({"method": self.command, "path": urlsplit(self.path).path,
                                      "mode": mode, "bytes": len(body), "key_id": key_id,
                                      "encoding": self.headers.get("Content-Encoding")})
        if self.headers.get("Content-Encoding", "").startswith("aws-chunked"):
            try:
                body, trailers = self.decode_chunks(
                    body, mode.startswith("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"), mode.endswith("-TRAILER"))
            except ValueError as e:
                return self.refuse(str(e))
            with LOCK:
                STATS["requests"][-1]["trailers"] = trailers
        path = urlsplit(self.path).path
        if self.command == "POST" and path == "/" and b"Action=AssumeRole" in body:
            return self.assume_role(body)
        if path.startswith("/model/") and path.endswith("/invoke"):
            request = json.loads(body or b"{}")
            answer = {"completion": f"you said: {request.get('prompt', '')}", "echo_key_id": "none"}
            return self.answer(200, json.dumps(answer).encode())
        if self.command == "PUT":
            OBJECTS[path] = body
            self.send_response(200)
            self.send_header("ETag", '"%s"' % hashlib.md5(body).hexdigest())
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.command in ("GET", "HEAD"):
            data = OBJECTS.get(path)
            if data is None:
                return self.answer(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", '"%s"' % hashlib.md5(data).hexdigest())
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            return None
        return self.answer(405, b"{}")

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERT, KEY)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
