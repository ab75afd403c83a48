"""The request and response shapes of the public API, as pydantic models.

Requests are parsed by :mod:`textops.serving.validation` (so every bad body gets our own 4xx);
these models describe them in the OpenAPI document and build the responses.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    texts: list[str] = Field(
        description="Texts to classify; at most TEXTOPS_MAX_TEXTS, each non-blank and at most "
        "TEXTOPS_MAX_TEXT_CHARS characters.",
        examples=[["房间干净，服务员很热情", "物流太慢了，屏幕还有划痕"]],
    )


class Prediction(BaseModel):
    id: str = Field(description="Prediction id; send it back to /feedback.")
    label: str = Field(description="The most probable class.")
    confidence: float = Field(description="Probability of that class.")
    probabilities: dict[str, float] = Field(description="Probability of every class.")


class PredictResponse(BaseModel):
    model: str = Field(description="Registered model name.")
    version: str = Field(description="Registered model version that answered.")
    predictions: list[Prediction]


class FeedbackRequest(BaseModel):
    id: str = Field(description="A prediction id returned by /predict.")
    label: str | None = Field(default=None, description="The true class (or give accepted).")
    accepted: bool | None = Field(
        default=None, description="Whether the predicted class was right (or give label)."
    )


class FeedbackSummary(BaseModel):
    count: int = Field(description="Feedback received by this worker since it started.")
    accuracy: float | None = Field(description="Share of those that were correct.")
    business_value: float = Field(description="Value of accepted predictions so far.")


class FeedbackResponse(BaseModel):
    id: str
    predicted: str = Field(description="The class that was predicted.")
    correct: bool
    recorded: bool = Field(
        description="False when this same feedback had been recorded before: a repeat is "
        "answered again but counted once."
    )
    summary: FeedbackSummary


class ErrorResponse(BaseModel):
    error: str = Field(description="What was wrong, for a person.")
    reason: str = Field(description="A stable code for the problem, e.g. too_many_texts.")
