import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from trw_platform.auth.passwords import MAX_LENGTH

_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalize_email(value: str) -> str:
    """Strip and lower-case an address; raises ValueError when it is not one."""
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL_PATTERN.match(email):
        raise ValueError("Enter an email address such as name@example.com.")
    return email


Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]
# Length and the common-password check happen in the service, so that the
# API and the web pages apply the same rules with the same messages.
NewPassword = Annotated[str, Field(max_length=MAX_LENGTH * 4)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
Code = Annotated[str, Field(min_length=1, max_length=64)]
OpaqueToken = Annotated[str, Field(min_length=1, max_length=256)]


class TokenRequest(BaseModel):
    api_key: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RegisterRequest(BaseModel):
    email: Email
    password: NewPassword


class EmailRequest(BaseModel):
    email: Email


class MessageRead(BaseModel):
    message: str


class LoginRequest(BaseModel):
    email: Email
    password: Password


class SessionTokensRead(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int


class TwoFactorChallengeRead(BaseModel):
    two_factor_required: Literal[True] = True
    challenge_token: str
    method: str
    expires_in: int


class VerifyEmailRequest(BaseModel):
    token: OpaqueToken


class ResetPasswordRequest(BaseModel):
    token: OpaqueToken
    password: NewPassword


class ChangePasswordRequest(BaseModel):
    current_password: Password
    new_password: NewPassword


class RefreshRequest(BaseModel):
    refresh_token: OpaqueToken


class LogoutRequest(BaseModel):
    all_sessions: bool = False


class MembershipRead(BaseModel):
    organization_id: str
    organization_name: str
    organization_slug: str
    role: str


class UserRead(BaseModel):
    id: str
    email: str
    email_verified: bool
    two_factor_method: str | None
    organizations: list[MembershipRead]


class TwoFactorEnableRequest(BaseModel):
    method: Literal["email", "totp"] = "email"


class TwoFactorEnableRead(BaseModel):
    method: str
    code_sent: bool
    expires_in: int
    # Only for TOTP: the secret to enter in an authenticator app, once.
    secret: str | None = None
    otpauth_uri: str | None = None


class CodeRequest(BaseModel):
    code: Code


class OptionalCodeRequest(BaseModel):
    code: Code | None = None


class BackupCodesRead(BaseModel):
    method: str
    backup_codes: list[str]


class TwoFactorStatusRead(BaseModel):
    enabled: bool
    method: str | None
    backup_codes_remaining: int
    pending_method: str | None


class TwoFactorDisableRead(BaseModel):
    enabled: bool
    code_sent: bool


class TwoFactorVerifyRequest(BaseModel):
    challenge_token: OpaqueToken
    code: Code
