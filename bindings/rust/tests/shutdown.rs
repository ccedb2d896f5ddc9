//! wschat::library_shutdown(), in a test binary of its own: it refuses
//! while any library memory is live, so no other test may run beside it.

use wschat::{sys, Server};

#[test]
fn shutdown_refuses_while_a_server_lives_then_succeeds() {
    let server = Server::new().unwrap();
    assert!(wschat::live_bytes() > 0);
    let err = wschat::library_shutdown().unwrap_err();
    assert_eq!(err.code(), sys::WSCHAT_EBUSY);
    assert_eq!(err.name(), "WSCHAT_EBUSY");
    drop(server);
    assert_eq!(wschat::live_bytes(), 0);
    assert_eq!(wschat::library_shutdown(), Ok(()));
    // The library may be used again afterwards.
    let again = Server::new().unwrap();
    drop(again);
    assert_eq!(wschat::library_shutdown(), Ok(()));
}
