//! The floor for the scaling benchmark: read a file and parse it with plain
//! `serde_json` into a `Value`, nothing else. `parse_floor FILE`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse_floor FILE")?;
    let bytes = std::fs::read(&path)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)?;
    // Touch the result so the parse cannot be optimised away.
    let profiles = value["profiles"].as_array().map(Vec::len).unwrap_or(0);
    println!("{profiles}");
    Ok(())
}
