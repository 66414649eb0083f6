//! Hostile test plugin `wrong-world`: a valid component, but of the world
//! `other:thing/thing@0.1.0` (see `wit/thing.wit`), which exports `greet`
//! instead of the gateway's `handle`. The gateway must refuse it at upload.
//! The glue exists only on `wasm32`; on the host this crate is empty.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    wit_bindgen::generate!({
        path: "wit",
        world: "thing",
    });

    struct Thing;

    impl Guest for Thing {
        fn greet(name: String) -> String {
            format!("hello, {name}")
        }
    }

    export!(Thing);
}
