from hubd.errors import ControlRequestError, HubUnhealthy, UserAccountError, error_class_named


def test_errors_cross_the_socket_by_name() -> None:
    assert error_class_named("UserAccountError") is UserAccountError
    assert error_class_named("HubUnhealthy") is HubUnhealthy  # a grandchild
    assert error_class_named("SomethingElse") is ControlRequestError
