//! Order fulfilment: wait for the payment, give the warehouse time to pick
//! the order, let it ship the parcel, then wait for the delivery.
//!
//! It shows messages with a timeout, a timed sleep, a group task and data
//! fields that follow the order through its stages.
//!
//! # Flow
//!
//! 1. Waits for the message `payment-received`, with a payload such as
//!    `{ "amount": 42.5, "reference": "PAY-778" }`. Without a payment within
//!    `payment_timeout_secs` the order is cancelled.
//! 2. Sleeps for `shipping_delay_secs`, then gives the group `warehouse` a
//!    task with the actions `shipped` and `out-of-stock`. The warehouse may
//!    enter a `tracking` number.
//! 3. After `shipped`, waits for the message `delivered`, with any payload,
//!    for at most `delivery_timeout_secs`.
//!
//! # Input
//!
//! ```json
//! {
//!   "order_id": "A-1001", "customer": "carol",
//!   "items": [{ "sku": "MUG-01", "quantity": 2 }],
//!   "total": 42.5,
//!   "payment_timeout_secs": 86400,
//!   "shipping_delay_secs": 3600,
//!   "delivery_timeout_secs": 1209600
//! }
//! ```
//!
//! The timeouts are optional and default to the values above: one day for
//! the payment, one hour before shipping and two weeks for the delivery.
//! `items` is shown to the warehouse as given.
//!
//! # Output
//!
//! One of:
//!
//! ```json
//! { "status": "cancelled", "order_id": "A-1001", "reason": "payment not received in time" }
//! { "status": "out-of-stock", "order_id": "A-1001", "payment": { "amount": 42.5, "reference": "PAY-778" } }
//! { "status": "delivered", "order_id": "A-1001", "payment": { "amount": 42.5, "reference": "PAY-778" },
//!   "tracking": "1Z999", "delivered": true }
//! ```
//!
//! When the delivery message does not arrive in time, `status` is `shipped`
//! and `delivered` is `false`. `tracking` is `null` when the warehouse
//! entered none.
//!
//! # Running it
//!
//! `cargo build --release` in `workflows/` writes
//! `target/guests/wasm32-wasip2/release/order_fulfilment.wasm`. The Layover
//! host embeds that file. Start it with the input above, then send it the
//! messages `payment-received` and `delivered`.

use std::time::Duration;

use layover_sdk::{Error, Task, TaskResult, await_message, human_task, log, set_field, sleep};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const DEFAULT_PAYMENT_TIMEOUT_SECS: u64 = 24 * 60 * 60;
const DEFAULT_SHIPPING_DELAY_SECS: u64 = 60 * 60;
const DEFAULT_DELIVERY_TIMEOUT_SECS: u64 = 14 * 24 * 60 * 60;

#[derive(Debug, Deserialize)]
struct Input {
    order_id: String,
    customer: String,
    items: Vec<Value>,
    total: f64,
    #[serde(default = "default_payment_timeout_secs")]
    payment_timeout_secs: u64,
    #[serde(default = "default_shipping_delay_secs")]
    shipping_delay_secs: u64,
    #[serde(default = "default_delivery_timeout_secs")]
    delivery_timeout_secs: u64,
}

fn default_payment_timeout_secs() -> u64 {
    DEFAULT_PAYMENT_TIMEOUT_SECS
}

fn default_shipping_delay_secs() -> u64 {
    DEFAULT_SHIPPING_DELAY_SECS
}

fn default_delivery_timeout_secs() -> u64 {
    DEFAULT_DELIVERY_TIMEOUT_SECS
}

/// The payload of the `payment-received` message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payment {
    amount: f64,
    #[serde(default)]
    reference: Option<String>,
}

/// The data the warehouse may enter on its task.
#[derive(Debug, Default, Deserialize)]
struct ShippingData {
    tracking: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
enum Output {
    Cancelled { order_id: String, reason: String },
    OutOfStock { order_id: String, payment: Payment },
    Shipped(Shipment),
    Delivered(Shipment),
}

#[derive(Debug, Serialize)]
struct Shipment {
    order_id: String,
    payment: Payment,
    tracking: Option<String>,
    delivered: bool,
}

/// The warehouse's decision on its task.
enum Warehouse {
    Shipped { tracking: Option<String> },
    OutOfStock,
}

#[derive(Serialize)]
struct WarehouseForm<'a> {
    order_id: &'a str,
    customer: &'a str,
    items: &'a [Value],
    total: f64,
}

fn run(input: Input) -> Result<Output, Error> {
    validate(&input)?;
    log::info(format!(
        "order {} from {} placed, total {:.2}",
        input.order_id, input.customer, input.total
    ));

    let Some(payment) = await_payment(&input)? else {
        set_field("stage", "cancelled")?;
        log::warn(format!(
            "no payment for order {} within {} s, cancelling it",
            input.order_id, input.payment_timeout_secs
        ));
        return Ok(Output::Cancelled {
            order_id: input.order_id,
            reason: String::from("payment not received in time"),
        });
    };

    set_field("stage", "picking")?;
    sleep(Duration::from_secs(input.shipping_delay_secs));

    let tracking = match ship(&input)? {
        Warehouse::Shipped { tracking } => tracking,
        Warehouse::OutOfStock => {
            set_field("stage", "out-of-stock")?;
            return Ok(Output::OutOfStock {
                order_id: input.order_id,
                payment,
            });
        }
    };

    let delivered = await_delivery(&input)?;
    let shipment = Shipment {
        order_id: input.order_id,
        payment,
        tracking,
        delivered,
    };
    Ok(if delivered {
        Output::Delivered(shipment)
    } else {
        Output::Shipped(shipment)
    })
}

layover_sdk::workflow!(run);

fn validate(input: &Input) -> Result<(), Error> {
    if input.order_id.trim().is_empty() {
        return Err(Error::new("invalid input: order_id must not be empty"));
    }
    if input.items.is_empty() {
        return Err(Error::new(format!(
            "invalid input: order {} has no items",
            input.order_id
        )));
    }
    if !input.total.is_finite() || input.total < 0.0 {
        return Err(Error::new(format!(
            "invalid input: total must be a non-negative number, got {}",
            input.total
        )));
    }
    Ok(())
}

/// Waits for the payment, returning `None` when it does not arrive in time.
fn await_payment(input: &Input) -> Result<Option<Payment>, Error> {
    set_field("stage", "awaiting-payment")?;
    let timeout = Duration::from_secs(input.payment_timeout_secs);
    let Some(payment) = await_message::<Payment>("payment-received", Some(timeout))? else {
        return Ok(None);
    };

    set_field("payment", &payment)?;
    log::info(format!(
        "payment of {:.2} received for order {}",
        payment.amount, input.order_id
    ));
    // Rounding to cents keeps binary floating-point noise out of the check.
    if (payment.amount * 100.0).round() != (input.total * 100.0).round() {
        log::warn(format!(
            "payment of {:.2} differs from the order total of {:.2}",
            payment.amount, input.total
        ));
    }
    Ok(Some(payment))
}

/// Asks the warehouse to ship the order.
fn ship(input: &Input) -> Result<Warehouse, Error> {
    set_field("stage", "warehouse")?;
    let form = WarehouseForm {
        order_id: &input.order_id,
        customer: &input.customer,
        items: &input.items,
        total: input.total,
    };
    let task = Task::new(format!(
        "Pick and ship order {} for {}",
        input.order_id, input.customer
    ))
    .actions(["shipped", "out-of-stock"])
    .group("warehouse")
    .form(&form)?;

    let outcome = match human_task(&task) {
        TaskResult::Completed(outcome) => outcome,
        TaskResult::TimedOut => {
            return Err(Error::new(
                "the host reported a timeout for the warehouse task, which has none",
            ));
        }
    };
    log::info(format!(
        "{} marked order {} as {}",
        outcome.by, input.order_id, outcome.action
    ));
    match outcome.action.as_str() {
        "shipped" => {
            // A form submitted without any input may arrive as `null`.
            let data = outcome
                .data_as::<Option<ShippingData>>()?
                .unwrap_or_default();
            if let Some(tracking) = &data.tracking {
                set_field("tracking", tracking)?;
            }
            Ok(Warehouse::Shipped {
                tracking: data.tracking,
            })
        }
        "out-of-stock" => Ok(Warehouse::OutOfStock),
        other => Err(Error::new(format!(
            "unexpected action \"{other}\" on the warehouse task"
        ))),
    }
}

/// Waits for the delivery and returns whether it arrived in time.
fn await_delivery(input: &Input) -> Result<bool, Error> {
    set_field("stage", "in-transit")?;
    let timeout = Duration::from_secs(input.delivery_timeout_secs);
    let delivered = await_message::<Value>("delivered", Some(timeout))?.is_some();
    if delivered {
        set_field("stage", "delivered")?;
        log::info(format!("order {} delivered", input.order_id));
    } else {
        set_field("stage", "shipped")?;
        log::warn(format!(
            "no delivery confirmation for order {} within {} s",
            input.order_id, input.delivery_timeout_secs
        ));
    }
    Ok(delivered)
}
