"""A small application that uses the Morpheus gateway through the OpenAI SDK: models, one session per key, chat."""

from __future__ import annotations

from typing import Any

import openai


class MorpheusSessions:
    """Opens, checks and closes the session of one API key; the SDK retries a 5xx twice by default."""

    def __init__(self, base_url: str, api_key: str, *, max_retries: int = 2, **client: Any) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, **client)

    def models(self) -> list[str]:
        return [model.id for model in self.client.models.list()]

    def open(self, model: str, duration: int = 3600) -> str:
        """The session id for `model`: the key's session is reused (R1) or switched (R2)."""
        body = {"sessionDuration": duration, "directPayment": False, "failover": False}
        reply = self._post("/session/modelsession", body=body, options={"params": {"model_id": model}})
        return str(reply["session_id"])

    def status(self) -> str:
        """alive, expired, dead, no_session or error, as the gateway's ping says."""
        return str(self._post("/session/pingsession")["status"])

    def close(self) -> str:
        return str(self._post("/session/closesession")["message"])

    def ask(self, question: str, model: str, *, stream: bool = False) -> str:
        """A chat answer; the gateway runs it on the key's session (opened, reused or replaced)."""
        messages: list[Any] = [{"role": "user", "content": question}]
        if not stream:
            answer = self.client.chat.completions.create(model=model, messages=messages)
            return answer.choices[0].message.content or ""
        chunks = self.client.chat.completions.create(model=model, messages=messages, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)

    def embed(self, texts: list[str], model: str = "text-embedding-bge-m3") -> list[list[float]]:
        return [item.embedding for item in self.client.embeddings.create(model=model, input=texts).data]

    def __enter__(self) -> MorpheusSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _post(self, path: str, **options: Any) -> dict[str, Any]:
        reply: dict[str, Any] = self.client.post(path, cast_to=object, **options)
        return reply
