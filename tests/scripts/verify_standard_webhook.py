#!/usr/bin/env python3
"""Verify one captured notification with the reference Standard Webhooks library.

Reads JSON on stdin: {"secret": "whsec_...", "headers": {name: value}, "body": "..."}.
Exit 0: verified. Exit 1: the library refused it. Exit 3: the `standardwebhooks` package is
not installed (pip install standardwebhooks).
"""
import json
import sys

try:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError
except ImportError:
    print("standardwebhooks is not installed", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    msg = json.load(sys.stdin)
    try:
        Webhook(msg["secret"]).verify(msg["body"], msg["headers"])
    except WebhookVerificationError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    print("verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
