//! AES secure messaging shared by SCP03 and SCP11 (GPC Amd D §6.2.4-§6.2.7, Amd F §6.6):
//! C-MAC with MAC chaining, C-DECRYPTION with the encryption counter, R-MAC and R-ENCRYPTION.
//!
//! One [`AesMessaging`] value holds the three session key schedules, the MAC chaining value
//! and the encryption counter; host and card each own one and call the mirror operations.

use alloc::vec::Vec;
use core::fmt;

use apdu_codec::{Command, CommandView, Response, ResponseView, StatusWord};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::Error;
use crate::apdu::{
    PlainRef, push_lc, sm_cla, unwrapped_command, wrapped_command, wrapped_is_extended,
};
use crate::crypto::AesCipher;
use crate::crypto::pad::{pad_method2, unpadded_len_method2};
use crate::level::SecurityLevel;

const BLOCK: usize = 16;

/// Session state of AES secure messaging.
pub struct AesMessaging {
    s_enc: AesCipher,
    s_mac: AesCipher,
    s_rmac: AesCipher,
    chain: [u8; BLOCK],
    counter: u128,
    level: SecurityLevel,
    mac_len: usize,
    scratch: Vec<u8>,
}

impl fmt::Debug for AesMessaging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AesMessaging")
            .field("level", &self.level)
            .field("mac_len", &self.mac_len)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Drop for AesMessaging {
    fn drop(&mut self) {
        self.chain.zeroize();
        self.scratch.zeroize();
    }
}

fn is_protected_status(sw: StatusWord) -> bool {
    // Amd D §6.2.6: R-MAC on success and warning status words only.
    sw.is_success() || sw.is_warning()
}

impl AesMessaging {
    /// A new messaging state from the session keys, the MAC chaining value after
    /// authentication (zero for SCP03 before EXTERNAL AUTHENTICATE, the receipt for SCP11),
    /// the level and the MAC length (8, or 16 in S16 mode).
    pub(crate) fn new(
        s_enc: AesCipher,
        s_mac: AesCipher,
        s_rmac: AesCipher,
        chain: [u8; BLOCK],
        level: SecurityLevel,
        mac_len: usize,
    ) -> Self {
        Self {
            s_enc,
            s_mac,
            s_rmac,
            chain,
            counter: 0,
            level,
            mac_len,
            scratch: Vec::with_capacity(320),
        }
    }

    /// The security level.
    #[must_use]
    pub fn level(&self) -> SecurityLevel {
        self.level
    }

    pub(crate) fn set_level(&mut self, level: SecurityLevel) {
        self.level = level;
    }

    /// Whether the encryption counter runs (C-DECRYPTION or R-ENCRYPTION).
    pub(crate) fn uses_counter(&self) -> bool {
        self.level.c_decryption() || self.level.r_encryption()
    }

    fn command_icv(&self) -> [u8; BLOCK] {
        // Amd D §6.2.6: ICV = AES(S-ENC, encryption counter).
        let mut icv = self.counter.to_be_bytes();
        self.s_enc.encrypt_block(&mut icv);
        icv
    }

    fn response_icv(&self) -> [u8; BLOCK] {
        // Amd D §6.2.7: ICV = AES(S-ENC, 80 || counter (15 bytes)).
        let mut icv = self.counter.to_be_bytes();
        icv[0] = 0x80;
        self.s_enc.encrypt_block(&mut icv);
        icv
    }

    /// The C-MAC over `chain || header || Lc || data`; returns the full 16-byte MAC.
    fn command_mac(
        &mut self,
        header: [u8; 4],
        lc: usize,
        extended: bool,
        body: &[u8],
    ) -> [u8; BLOCK] {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.chain);
        self.scratch.extend_from_slice(&header);
        push_lc(&mut self.scratch, lc, extended);
        self.scratch.extend_from_slice(body);
        self.s_mac.cmac_in_place(&mut self.scratch)
    }

    /// The EXTERNAL AUTHENTICATE C-MAC (SCP03): chaining value zero, no encryption, updates
    /// the chaining value. `extended`: the command travels in extended form (yubikit sends
    /// every command of an SCP session, EXTERNAL AUTHENTICATE included, that way), so the MAC
    /// covers `00 Lc1 Lc2`.
    pub(crate) fn mac_first(
        &mut self,
        header: [u8; 4],
        body: &[u8],
        extended: bool,
    ) -> [u8; BLOCK] {
        self.chain = [0; BLOCK];
        let lc = body.len() + self.mac_len;
        let mac = self.command_mac(header, lc, extended, body);
        self.chain = mac;
        mac
    }

    /// Host side: protect a plain command at the session's level.
    pub(crate) fn wrap(&mut self, cmd: PlainRef<'_>) -> Result<Command, Error> {
        if !self.level.c_mac() {
            return Ok(wrapped_command(
                cmd.header,
                cmd.data.to_vec(),
                cmd.le,
                wrapped_is_extended(cmd.form, cmd.data.len(), cmd.le)?,
            ));
        }
        let padded = if self.level.c_decryption() && !cmd.data.is_empty() {
            (cmd.data.len() / BLOCK + 1) * BLOCK
        } else {
            cmd.data.len()
        };
        let lc = padded + self.mac_len;
        let extended = wrapped_is_extended(cmd.form, lc, cmd.le)?;
        let mut data = Vec::with_capacity(lc);
        data.extend_from_slice(cmd.data);
        let next_counter = if self.uses_counter() {
            self.counter.checked_add(1).ok_or(Error::CounterExhausted)?
        } else {
            self.counter
        };
        self.counter = next_counter;
        if self.level.c_decryption() && !data.is_empty() {
            pad_method2(&mut data, BLOCK);
            let icv = self.command_icv();
            self.s_enc.cbc_encrypt(&icv, &mut data);
        }
        let mut header = cmd.header;
        header[0] = sm_cla(header[0]);
        let mac = self.command_mac(header, lc, extended, &data);
        self.chain = mac;
        data.extend_from_slice(mac.get(..self.mac_len).unwrap_or(&mac));
        Ok(wrapped_command(header, data, cmd.le, extended))
    }

    /// Card side: verify and decrypt a protected command. On error nothing changes (the
    /// caller closes the session).
    pub(crate) fn unwrap(&mut self, cmd: &CommandView<'_>) -> Result<Command, Error> {
        if !self.level.c_mac() {
            return Ok(unwrapped_command(cmd, cmd.data().to_vec()));
        }
        if !cmd.cla().has_secure_messaging() {
            return Err(Error::SecureMessagingMissing);
        }
        let data = cmd.data();
        let split = data
            .len()
            .checked_sub(self.mac_len)
            .ok_or(Error::CommandMac)?;
        let (body, mac) = data.split_at(split);
        let calc = self.command_mac(cmd.header(), data.len(), cmd.is_extended(), body);
        let ok: bool = calc.get(..self.mac_len).unwrap_or(&calc).ct_eq(mac).into();
        if !ok {
            return Err(Error::CommandMac);
        }
        let next_counter = if self.uses_counter() {
            self.counter.checked_add(1).ok_or(Error::CounterExhausted)?
        } else {
            self.counter
        };
        let mut plain = body.to_vec();
        if self.level.c_decryption() && !plain.is_empty() {
            if plain.len() % BLOCK != 0 {
                return Err(Error::Padding);
            }
            let mut counter_block = next_counter.to_be_bytes();
            self.s_enc.encrypt_block(&mut counter_block);
            self.s_enc.cbc_decrypt(&counter_block, &mut plain);
            let len = unpadded_len_method2(&plain).ok_or(Error::Padding)?;
            plain.truncate(len);
        }
        self.chain = calc;
        self.counter = next_counter;
        Ok(unwrapped_command(cmd, plain))
    }

    /// Card side: protect a response.
    pub(crate) fn wrap_response(&mut self, data: &[u8], sw: StatusWord) -> Response {
        if !self.level.r_mac() {
            return Response::new(data.to_vec(), sw);
        }
        if !is_protected_status(sw) {
            return Response::status_only(sw);
        }
        let mut out = Vec::with_capacity(data.len() + BLOCK + self.mac_len);
        out.extend_from_slice(data);
        if self.level.r_encryption() && !out.is_empty() {
            pad_method2(&mut out, BLOCK);
            let icv = self.response_icv();
            self.s_enc.cbc_encrypt(&icv, &mut out);
        }
        let mac = self.response_mac(&out, sw);
        out.extend_from_slice(mac.get(..self.mac_len).unwrap_or(&mac));
        Response::new(out, sw)
    }

    fn response_mac(&mut self, body: &[u8], sw: StatusWord) -> [u8; BLOCK] {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.chain);
        self.scratch.extend_from_slice(body);
        self.scratch.extend_from_slice(&sw.to_bytes());
        self.s_rmac.cmac_in_place(&mut self.scratch)
    }

    /// Host side: verify and decrypt a protected response.
    pub(crate) fn unwrap_response(&mut self, resp: &ResponseView<'_>) -> Result<Response, Error> {
        let sw = resp.status();
        if !self.level.r_mac() || !is_protected_status(sw) {
            return Ok(resp.to_response());
        }
        let data = resp.data();
        let split = data
            .len()
            .checked_sub(self.mac_len)
            .ok_or(Error::ResponseMac)?;
        let (body, mac) = data.split_at(split);
        let calc = self.response_mac(body, sw);
        let ok: bool = calc.get(..self.mac_len).unwrap_or(&calc).ct_eq(mac).into();
        if !ok {
            return Err(Error::ResponseMac);
        }
        let mut plain = body.to_vec();
        if self.level.r_encryption() && !plain.is_empty() {
            if plain.len() % BLOCK != 0 {
                return Err(Error::Padding);
            }
            let icv = self.response_icv();
            self.s_enc.cbc_decrypt(&icv, &mut plain);
            let len = unpadded_len_method2(&plain).ok_or(Error::Padding)?;
            plain.truncate(len);
        }
        Ok(Response::new(plain, sw))
    }
}
