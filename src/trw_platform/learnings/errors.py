from trw_platform.core.errors import NotFound


class LearningNotFound(NotFound):
    detail = "Learning not found"
