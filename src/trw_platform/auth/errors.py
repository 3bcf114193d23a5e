"""Errors of accounts, sessions, two-factor authentication and device sign-in."""

from trw_platform.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
)


class RecordedFailure(AppError):
    """An expected failure whose writes are committed with the error response.

    Attempt counters, revocations and audit rows must outlive the rejection
    they come with; see ``auth.dependencies.get_recording_session``.
    """


class WeakPassword(AppError):
    status_code = 422
    code = "weak_password"
    detail = "The password does not meet the password rules."


class InvalidCredentials(Unauthorized, RecordedFailure):
    detail = "invalid email or password"

    def __init__(self) -> None:
        super().__init__(code="invalid_credentials")


class EmailNotVerified(Forbidden, RecordedFailure):
    code = "email_not_verified"
    detail = (
        "Verify the email address first: follow the link in the verification "
        "email, or request a new one with POST /v1/auth/resend-verification."
    )


class InvalidCurrentPassword(Forbidden):
    code = "invalid_password"
    detail = "The current password is wrong."


class InvalidLinkToken(BadRequest, RecordedFailure):
    code = "invalid_token"
    detail = "The link is invalid, expired or already used; request a new one."


class InvalidRefreshToken(Unauthorized, RecordedFailure):
    detail = "The refresh token is invalid, expired or revoked; sign in again."

    def __init__(self) -> None:
        super().__init__(code="invalid_refresh_token")


class InvalidChallenge(Unauthorized, RecordedFailure):
    detail = "The two-factor challenge is invalid or expired; sign in again."

    def __init__(self) -> None:
        super().__init__(code="invalid_challenge")


class InvalidCode(BadRequest, RecordedFailure):
    code = "invalid_code"
    detail = "The code is wrong, expired or already used."


class TwoFactorAlreadyEnabled(Conflict):
    code = "two_factor_enabled"
    detail = "Two-factor authentication is already on; disable it first."


class TwoFactorNotEnabled(Conflict):
    code = "two_factor_disabled"
    detail = "Two-factor authentication is not on for this account."


class NoPendingEnablement(Conflict):
    code = "no_pending_enablement"
    detail = "Start with POST /v1/auth/2fa/enable, then confirm with its code."


class DeviceFlowError(BadRequest, RecordedFailure):
    """An RFC 8628 token error: ``error`` contains the RFC's code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail, code=code)


class UserCodeNotFound(NotFound):
    code = "user_code_not_found"
    detail = "No pending sign-in request has this code; check it or start again."


class DeviceAlreadyDecided(Conflict):
    code = "device_already_decided"
    detail = "This sign-in request was already approved, denied or has expired."
