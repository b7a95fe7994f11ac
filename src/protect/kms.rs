//! Content keys as KMS data keys (mode aws): `GenerateDataKey` with
//! `NumberOfBytes = 16` gives the clear key and its `CiphertextBlob`,
//! which is what is stored; `Decrypt` with the same encryption context
//! gives it back. The context (asset, key id, rendition) binds a blob to
//! its key: "The encryption context is cryptographically bound to the
//! ciphertext so that the same encryption context is required to decrypt
//! the data" (KMS Developer Guide, "Encryption context"). The calls are
//! held to botocore's KMS model in `tests/contract/jobs.rs`.

use super::{ClearKey, KeyContext, KeyError, KeyProvider};
use crate::secret::Secret;
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use std::collections::HashMap;

pub struct Kms {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl Kms {
    pub fn new(sdk: &aws_config::SdkConfig, key_id: String) -> Self {
        Kms {
            client: aws_sdk_kms::Client::new(sdk),
            key_id,
        }
    }
}

fn context(cx: KeyContext<'_>) -> HashMap<String, String> {
    HashMap::from([
        ("playgate:asset".to_owned(), cx.asset.to_string()),
        ("playgate:key".to_owned(), cx.key_id.to_owned()),
        ("playgate:rendition".to_owned(), cx.rendition.to_owned()),
    ])
}

fn sixteen(b: Option<&Blob>) -> Result<ClearKey, KeyError> {
    let bytes: [u8; 16] = b
        .map(|b| b.as_ref())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::Unwrap("KMS did not return 16 bytes".into()))?;
    Ok(Secret::new(bytes))
}

#[async_trait]
impl KeyProvider for Kms {
    fn wrapper(&self) -> String {
        format!("kms:{}", self.key_id)
    }

    async fn generate(&self, cx: KeyContext<'_>) -> Result<(ClearKey, Vec<u8>), KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .number_of_bytes(16)
            .set_encryption_context(Some(context(cx)))
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(crate::backends::aws::said(&e)))?;
        let clear = sixteen(out.plaintext())?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| KeyError::Generate("KMS returned no CiphertextBlob".into()))?;
        Ok((clear, blob.as_ref().to_vec()))
    }

    async fn unwrap(&self, wrapped: &[u8], cx: KeyContext<'_>) -> Result<ClearKey, KeyError> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context(cx)))
            .send()
            .await
            .map_err(|e| {
                let said = crate::backends::aws::said(&e);
                if said.contains("InvalidCiphertext") {
                    KeyError::Unwrap(said)
                } else {
                    KeyError::Unavailable(said)
                }
            })?;
        sixteen(out.plaintext())
    }
}
