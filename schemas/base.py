"""The base every contract model derives from: immutable and strict about unknown fields."""

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """An immutable model that rejects fields it does not know."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)
