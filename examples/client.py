"""Talk to a guarded service with the openai client and show what the guardrail did.

Start ``uvicorn examples.fastapi_app:app --port 8000``, then::

    python examples/client.py [--base-url http://127.0.0.1:8000/v1] [--token token-dr-alice]

Against ``guardrail demo`` instead: ``--token demo-clinician --user-token demo-user``.

The openai client sends ``api_key`` as ``Authorization: Bearer ...``, which is where the
example app's backend reads the caller's scopes from.
"""

from __future__ import annotations

import argparse

from openai import OpenAI

QUESTION = "What is the maximum safe dose of acetaminophen before liver toxicity?"


def ask(client: OpenAI, who: str, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": QUESTION}]
    )
    answer = raw.parse().choices[0].message.content or ""
    headers = {k: v for k, v in raw.headers.items() if k.startswith("x-guardrail-")}
    print(f"--- {who}")
    print(f"guardrail: {headers}")
    print(answer[:300])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--token", default="token-dr-alice", help="the clinician's token")
    parser.add_argument("--user-token", default="token-bob", help="an ordinary user's token")
    parser.add_argument("--model", default="demo-cautious-1")
    args = parser.parse_args()

    clinician = OpenAI(base_url=args.base_url, api_key=args.token)
    ask(clinician, "verified clinician: refusal recovered by a retry", args.model)
    ask(
        OpenAI(base_url=args.base_url, api_key=args.user_token),
        "ordinary user: the refusal passes through",
        args.model,
    )

    print("--- verified clinician, streaming")
    stream = clinician.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
