//! The example workflows from `workflows/`, built by the build script and
//! bundled into the binary so that `layover serve --examples` can deploy them.

/// The bundled examples, as (workflow name, component bytes).
pub const EXAMPLES: &[(&str, &[u8])] = &[
    (
        "expense-approval",
        include_bytes!(concat!(
            env!("LAYOVER_GUESTS_DIR"),
            "/expense_approval.wasm"
        )),
    ),
    (
        "order-fulfilment",
        include_bytes!(concat!(
            env!("LAYOVER_GUESTS_DIR"),
            "/order_fulfilment.wasm"
        )),
    ),
];
