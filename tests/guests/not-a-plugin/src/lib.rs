//! A component for an unrelated world.

wit_bindgen::generate!({ path: "wit", world: "greeter" });

struct Greeter;

impl exports::acme::greeter::greet::Guest for Greeter {
    fn hello(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Greeter);
