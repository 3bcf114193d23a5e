from typing import Literal

from pydantic import BaseModel, Field


class TokenRequest(BaseModel):
    api_key: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
