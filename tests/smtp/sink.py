"""A real SMTP server for the reporter-mail e2e tests (tests/e2e/reporter_mail.rs).

Usage: sink.py DIR

Listens with aiosmtpd (PyPI, installed by deploy/local/stack.sh) on 127.0.0.1, on a
free port it prints on stdout once listening. Every message accepted is written to DIR
as <n>.eml (the envelope's recipients on a first line `X-Envelope-To:`, then the
message as received), atomically (written aside, then renamed). Runs until killed or
until its stdin closes.
"""

import asyncio
import itertools
import os
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out):
        self.out = out
        self.count = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.count)
        tmp = os.path.join(self.out, f".{n:06}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            content = envelope.original_content or envelope.content
            if isinstance(content, str):
                content = content.encode()
            f.write(content)
        os.rename(tmp, os.path.join(self.out, f"{n:06}.eml"))
        return "250 Message accepted for delivery"


async def main(out):
    loop = asyncio.get_running_loop()
    sink = Sink(out)
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="smtp.precinct.test"), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    # Ends when the test closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
