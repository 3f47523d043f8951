module guestpull/tests/tools/guestvm

go 1.19
