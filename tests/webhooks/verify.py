"""Verifies webhook deliveries with the `standardwebhooks` package (PyPI), an
implementation of the Standard Webhooks scheme independent of Precinct's.

Input (stdin, JSON): {"secret": "whsec_...", "messages": [{"body": "...",
"headers": {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": ...}}]}
Output (stdout, JSON): {"valid": [true|false, ...]}, one answer per message.
Installed by deploy/local/stack.sh (make test's set-up); called by tests/e2e/webhooks.rs.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> None:
    request = json.load(sys.stdin)
    hook = Webhook(request["secret"])
    valid = []
    for message in request["messages"]:
        try:
            hook.verify(message["body"], message["headers"], json_parse=False)
            valid.append(True)
        except WebhookVerificationError:
            valid.append(False)
    json.dump({"valid": valid}, sys.stdout)


if __name__ == "__main__":
    main()
