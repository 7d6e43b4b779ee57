"""The sandbox's side: the real boto3, configured only with what `egret sandbox-env`
gives (placeholder keys, the region, HTTPS_PROXY and egret's CA bundle).

Usage: client.py S3_ENDPOINT BEDROCK_ENDPOINT SIZE
Prints one JSON object with what each call got.
"""

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config

S3_ENDPOINT, BEDROCK_ENDPOINT, SIZE = sys.argv[1], sys.argv[2], int(sys.argv[3])
CA = os.environ["AWS_CA_BUNDLE"]
config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                signature_version="s3v4",
                proxies={"https": os.environ["HTTPS_PROXY"]})
out = {}


def pattern_file(size):
    """SIZE bytes of a repeating pattern in a file (streamed from disk by botocore)."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"egret-aws-{os.getpid()}.bin")
    block = bytes(i % 251 for i in range(251 * 4096))
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    return path


def pattern_sha256(size):
    h = hashlib.sha256()
    block = bytes(i % 251 for i in range(251 * 4096))
    left = size
    while left:
        n = min(left, len(block))
        h.update(block[:n])
        left -= n
    return h.hexdigest()


def call(name, fn):
    try:
        out[name] = fn()
    except Exception as e:  # the test reads what failed
        out[name] = {"error": type(e).__name__, "message": str(e)[:500]}


s3 = boto3.client("s3", endpoint_url=S3_ENDPOINT, verify=CA, config=config)


def put():
    path = pattern_file(SIZE)
    try:
        with open(path, "rb") as body:
            s3.put_object(Bucket="bucket", Key="big.bin", Body=body)
    finally:
        os.unlink(path)
    return {"ok": True}


def get():
    got = s3.get_object(Bucket="bucket", Key="big.bin")
    h, length = hashlib.sha256(), 0
    for piece in got["Body"].iter_chunks(1 << 20):
        h.update(piece)
        length += len(piece)
    return {"sha256": h.hexdigest(), "expected": pattern_sha256(SIZE), "length": length}


def presigned():
    s3.put_object(Bucket="bucket", Key="small.txt", Body=b"presigned hello")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "bucket", "Key": "small.txt"},
                                    ExpiresIn=300)
    ctx = __import__("ssl").create_default_context(cafile=CA)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": os.environ["HTTPS_PROXY"]}),
        urllib.request.HTTPSHandler(context=ctx))
    with opener.open(url, timeout=30) as r:
        return {"status": r.status, "body": r.read().decode(), "url_key_id": url.split("X-Amz-Credential=")[1][:20]}


def bedrock():
    client = boto3.client("bedrock-runtime", endpoint_url=BEDROCK_ENDPOINT, verify=CA, config=config)
    got = client.invoke_model(modelId="x", body=json.dumps({"prompt": "hello"}),
                              contentType="application/json", accept="application/json")
    return json.loads(got["body"].read())


def chunked(trailer=False):
    """A PUT in STREAMING-AWS4-HMAC-SHA256-PAYLOAD (with `trailer`: its -TRAILER form,
    a CRC32 checksum after the last chunk), signed (seed with botocore's signer, chunks
    by hand) with the placeholder keys, as Java/Go SDKs send uploads."""
    import base64
    import zlib
    import datetime
    import hmac as hm
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    akid, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    pieces = [bytes([65 + i]) * (64 * 1024 + i) for i in range(3)]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/us-east-1/s3/aws4_request"
    # Framing with the final lengths: 64 hex digits per signature.
    framed_len = sum(len(f"{len(p):x};chunk-signature=") + 64 + 2 + len(p) + 2 for p in pieces)
    crc = base64.b64encode(zlib.crc32(b"".join(pieces)).to_bytes(4, "big")).decode()
    trailer_line = f"x-amz-checksum-crc32:{crc}"
    if trailer:
        framed_len += len("0;chunk-signature=") + 64 + 2
        framed_len += len(trailer_line) + 2 + len("x-amz-trailer-signature:") + 64 + 2 + 2
    else:
        framed_len += len("0;chunk-signature=") + 64 + 4
    host = S3_ENDPOINT.split("://")[1]
    key_name = "chunked-trailer.bin" if trailer else "chunked.bin"
    url = f"{S3_ENDPOINT}/bucket/{key_name}"
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {"host": host, "x-amz-date": stamp,
               "x-amz-content-sha256": mode,
               "content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(sum(map(len, pieces))),
               "content-length": str(framed_len)}
    if trailer:
        headers["x-amz-trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=url, headers=headers)
    request.context["timestamp"] = stamp
    auth = S3SigV4Auth(Credentials(akid, secret), "s3", "us-east-1")
    canonical = auth.canonical_request(request)
    seed = auth.signature(auth.string_to_sign(request, canonical), request)
    signed = ";".join(sorted(headers))
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={akid}/{scope}, "
                                f"SignedHeaders={signed}, Signature={seed}")
    key = ("AWS4" + secret).encode()
    for part in (stamp[:8], "us-east-1", "s3", "aws4_request"):
        key = hm.new(key, part.encode(), hashlib.sha256).digest()
    body, previous = b"", seed
    for data in pieces + [b""]:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", stamp, scope, previous,
                              hashlib.sha256(b"").hexdigest(), hashlib.sha256(data).hexdigest()])
        previous = hm.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data
        if data or not trailer:
            body += b"\r\n"
    if trailer:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", stamp, scope, previous,
                              hashlib.sha256((trailer_line + "\n").encode()).hexdigest()])
        signature = hm.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += f"{trailer_line}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode()
    assert len(body) == framed_len, (len(body), framed_len)
    ctx = __import__("ssl").create_default_context(cafile=CA)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": os.environ["HTTPS_PROXY"]}),
        urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url, data=body, method="PUT",
                                 headers={k: v for k, v in headers.items() if k != "host"})
    try:
        with opener.open(req, timeout=30) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()[:500]}
    got = s3.get_object(Bucket="bucket", Key=key_name)["Body"].read()
    return {"status": status, "same": got == b"".join(pieces)}


def wrong_secret():
    bad = boto3.client("s3", endpoint_url=S3_ENDPOINT, verify=CA, config=config,
                       aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key="not-the-placeholder-secret-0000000000000")
    bad.get_object(Bucket="bucket", Key="small.txt")
    return {"ok": True}


for name, fn in [("put", put), ("get", get), ("presigned", presigned), ("bedrock", bedrock),
                 ("chunked", chunked), ("chunked_trailer", lambda: chunked(trailer=True)),
                 ("wrong_secret", wrong_secret)]:
    if name in os.environ.get("CALLS", "put,get,presigned,bedrock,wrong_secret").split(","):
        call(name, fn)
# What the endpoint saw, asked directly (not through egret): its own test port.
port = S3_ENDPOINT.rsplit(":", 1)[1]
unverified = __import__("ssl")._create_unverified_context()
with urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                 urllib.request.HTTPSHandler(context=unverified)).open(
        f"https://127.0.0.1:{port}/_stats", timeout=30) as r:
    out["stats"] = json.loads(r.read())
print(json.dumps(out))
