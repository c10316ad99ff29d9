//! An evaluator for a future contract version (9.0.0).

wit_bindgen::generate!({ path: "wit", world: "threshold-evaluator" });

struct Future;

impl exports::dscan::plugin::evaluator::Guest for Future {
    fn evaluate(threshold: String) -> bool {
        threshold.is_empty()
    }
}

export!(Future);
