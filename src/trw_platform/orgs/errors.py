from trw_platform.core.errors import Conflict, NotFound


class OrganizationNotFound(NotFound):
    detail = "Organization not found"


class ApiKeyNotFound(NotFound):
    detail = "API key not found"


class SlugTaken(Conflict):
    detail = "An organization with this slug already exists"
