//! `Store` on DynamoDB: one table, partition key `kind`, sort key `id`,
//! attributes `revision` (N), `body` (S, the JSON) and `updated_at` (N).
//! Every write is conditional, so `Expect` means the same as on SQLite:
//! `Absent` is `attribute_not_exists(id)`, `Revision(r)` is
//! `revision = r`; a failed condition is `StoreError::Conflict`. Reads are
//! strongly consistent. The table is made by `deploy/` in production;
//! `create_table` is for development and tests (on-demand billing).

use super::{Expect, Kind, Record, Store, StoreError, StoreResult};
use crate::backends::aws::said;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType,
};
use std::collections::HashMap;

pub struct DynamoStore {
    client: Client,
    table: String,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("dynamodb: {e}"))
}

fn now() -> u64 {
    crate::clock::Clock::now_epoch(&crate::clock::SystemClock)
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn record(item: &HashMap<String, AttributeValue>) -> StoreResult<Record> {
    let text = |k: &str| match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Corrupt(format!("item without {k}"))),
    };
    let num = |k: &str| match item.get(k) {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| StoreError::Corrupt(format!("{k} is not a number"))),
        _ => Err(StoreError::Corrupt(format!("item without {k}"))),
    };
    Ok(Record {
        id: text("id")?,
        revision: num("revision")?,
        body: serde_json::from_str(&text("body")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        updated_at: num("updated_at")?,
    })
}

/// What `Expect` means as a DynamoDB condition.
struct Condition {
    expression: &'static str,
    name: (&'static str, &'static str),
    value: Option<(&'static str, AttributeValue)>,
}

impl Condition {
    fn of(expect: Expect) -> Option<Condition> {
        match expect {
            Expect::Any => None,
            Expect::Absent => Some(Condition {
                expression: "attribute_not_exists(#id)",
                name: ("#id", "id"),
                value: None,
            }),
            Expect::Revision(r) => Some(Condition {
                expression: "#r = :r",
                name: ("#r", "revision"),
                value: Some((":r", n(r))),
            }),
        }
    }
}

impl DynamoStore {
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        DynamoStore {
            client: Client::new(sdk),
            table: table.into(),
        }
    }

    /// Creates the table when it does not exist (development, tests).
    pub async fn create_table(&self) -> StoreResult<()> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(unavailable)
        };
        let key = |name: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
                .map_err(unavailable)
        };
        let made = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attr("kind")?)
            .attribute_definitions(attr("id")?)
            .key_schema(key("kind", KeyType::Hash)?)
            .key_schema(key("id", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match made {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(said(&e))),
        }
    }

    fn key(kind: Kind, id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("kind".to_owned(), s(kind.as_str())),
            ("id".to_owned(), s(id)),
        ])
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn check(&self) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("kind", s("heartbeat"))
            .item("id", s("readyz"))
            .item("updated_at", n(now()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unavailable(said(&e)))
    }

    async fn get(&self, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(kind, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(said(&e)))?;
        out.item.as_ref().map(record).transpose()
    }

    async fn put(
        &self,
        kind: Kind,
        id: &str,
        body: &serde_json::Value,
        expect: Expect,
    ) -> StoreResult<u64> {
        let text = serde_json::to_string(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // One UpdateItem for every case: the revision is bumped by the
        // store itself, under the caller's condition.
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(kind, id)))
            .update_expression("SET #b = :b, #t = :t ADD #r :one")
            .expression_attribute_names("#b", "body")
            .expression_attribute_names("#t", "updated_at")
            .expression_attribute_names("#r", "revision")
            .expression_attribute_values(":b", s(&text))
            .expression_attribute_values(":t", n(now()))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew);
        if let Some(c) = Condition::of(expect) {
            req = req
                .condition_expression(c.expression)
                .expression_attribute_names(c.name.0, c.name.1);
            if let Some((k, v)) = c.value {
                req = req.expression_attribute_values(k, v);
            }
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                return Err(StoreError::Conflict { expected: expect });
            }
            Err(e) => return Err(unavailable(said(&e))),
        };
        match out.attributes.as_ref().and_then(|a| a.get("revision")) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Corrupt("revision is not a number".into())),
            _ => Err(StoreError::Corrupt("no revision after the write".into())),
        }
    }

    async fn delete(&self, kind: Kind, id: &str, expect: Expect) -> StoreResult<bool> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(kind, id)))
            .return_values(ReturnValue::AllOld);
        // As on SQLite: deleting "what is absent" succeeds only when absent.
        if let Some(c) = Condition::of(expect) {
            req = req
                .condition_expression(c.expression)
                .expression_attribute_names(c.name.0, c.name.1);
            if let Some((k, v)) = c.value {
                req = req.expression_attribute_values(k, v);
            }
        }
        match req.send().await {
            Ok(out) => Ok(out.attributes.is_some_and(|a| !a.is_empty())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict { expected: expect })
            }
            Err(e) => Err(unavailable(said(&e))),
        }
    }

    async fn list(
        &self,
        kind: Kind,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Record>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        let limit_i32 = i32::try_from(limit).unwrap_or(i32::MAX);
        while out.len() < limit {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .limit(limit_i32)
                .set_exclusive_start_key(start.take())
                .expression_attribute_names("#k", "kind");
            req = match after {
                Some(a) => req
                    .key_condition_expression("#k = :k AND #id > :a")
                    .expression_attribute_names("#id", "id")
                    .expression_attribute_values(":k", s(kind.as_str()))
                    .expression_attribute_values(":a", s(a)),
                None => req
                    .key_condition_expression("#k = :k")
                    .expression_attribute_values(":k", s(kind.as_str())),
            };
            let page = req.send().await.map_err(|e| unavailable(said(&e)))?;
            for item in page.items() {
                if out.len() < limit {
                    out.push(record(item)?);
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}
