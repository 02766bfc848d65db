// A TPM 2.0 client: one method per command sealroot uses, over any transport. Every method throws TpmError
// (response code decoded, with the command's name) or TpmUnavailableError (nothing answered).
import { randomBytes } from '../crypto/primitives.ts';
import { BANKS, type BankName, bankByAlg, bankLabel, OTHER_HASH_SIZES, TPM_ALG, TPM_CAP_PCRS, TPM_CC, TPM_RH_NULL, TPM_RH_OWNER, TPM_SE_POLICY, TPM_SU_CLEAR } from './constants.ts';
import { type AuthSession, buildCommand, commandName, parseResponse, passwordSession, policyAuth } from './frame.ts';
import { Reader, TpmFormatError, Writer } from './marshal.ts';
import { marshalPcrSelection, type PcrSelection, selectionOrder, unmarshalPcrSelection } from './pcr-selection.ts';
import { TPM_RC_INITIALIZE, TPM_RC_RETRY, TPM_RC_TESTING, TPM_RC_YIELDED, TpmError } from './response-codes.ts';
import { marshalNvPublic, marshalTicket, type NvPublic, unmarshalNvPublic, unmarshalTicket, type VerifiedTicket } from './structures.ts';
import { formatTcti, openTransport, parseTcti, type Transport } from './transport.ts';

export interface CommandOptions {
  handles?: number[];
  sessions?: AuthSession[];
  parameters?: Buffer;
  responseHandles?: number;
}

export type PcrValues = Map<string, Buffer>;

export const pcrKey = (bank: BankName, pcr: number) => `${bank}:${pcr}`;

export class Tpm {
  readonly transport: Transport;
  private startedUp = false;
  private banks: Promise<{ bank: BankName | number; pcrs: number[] }[]> | undefined;

  private constructor(transport: Transport) {
    this.transport = transport;
  }

  static async open(tcti: string, options: { timeoutMs?: number } = {}): Promise<Tpm> {
    return new Tpm(await openTransport(parseTcti(tcti), options.timeoutMs ?? 30_000));
  }

  get description(): string {
    return formatTcti(this.transport.tcti);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }

  async execute(code: number, options: CommandOptions = {}): Promise<{ handles: number[]; parameters: Reader }> {
    const frame = buildCommand(code, options.handles ?? [], options.sessions, options.parameters ?? Buffer.alloc(0));
    for (let attempt = 0; ; attempt++) {
      const response = parseResponse(await this.transport.transmit(frame), options.responseHandles ?? 0);
      if (response.rc === 0) return { handles: response.handles, parameters: new Reader(response.parameters, `${commandName(code)} response`) };
      // A simulator that was powered on without TPM2_Startup (swtpm without --flags startup-clear): start it once.
      if (response.rc === TPM_RC_INITIALIZE && !this.startedUp && this.transport.tcti.kind !== 'device' && code !== TPM_CC.Startup) {
        this.startedUp = true;
        await this.execute(TPM_CC.Startup, { parameters: new Writer().u16(TPM_SU_CLEAR).finish() });
        continue;
      }
      const retryable = response.rc === TPM_RC_RETRY || response.rc === TPM_RC_YIELDED || response.rc === TPM_RC_TESTING;
      if (retryable && attempt < 20) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      throw new TpmError(commandName(code), response.rc);
    }
  }

  async getRandom(count: number): Promise<Buffer> {
    const { parameters } = await this.execute(TPM_CC.GetRandom, { parameters: new Writer().u16(count).finish() });
    return parameters.sized();
  }

  /**
   * The banks the TPM has allocated, with the PCRs each covers (TPM2_GetCapability(TPM_CAP_PCRS)). Asked once per
   * connection: a new allocation (TPM2_PCR_Allocate) takes effect only at the next TPM reset (Part 3 §22.5).
   */
  pcrBanks(): Promise<{ bank: BankName | number; pcrs: number[] }[]> {
    if (this.banks === undefined) {
      this.banks = this.readPcrBanks();
      // A failed answer is not kept: the next call asks again.
      this.banks.catch(() => {
        this.banks = undefined;
      });
    }
    return this.banks;
  }

  private async readPcrBanks(): Promise<{ bank: BankName | number; pcrs: number[] }[]> {
    const { parameters } = await this.execute(TPM_CC.GetCapability, { parameters: new Writer().u32(TPM_CAP_PCRS).u32(0).u32(1).finish() });
    parameters.u8(); // moreData
    const capability = parameters.u32();
    if (capability !== TPM_CAP_PCRS) throw new TpmFormatError(`GetCapability answered capability ${capability}`);
    return unmarshalPcrSelection(parameters).filter((entry) => entry.pcrs.length > 0);
  }

  /** TPM2_PCR_Read as often as needed (a TPM returns at most 8 digests per call). Keys: `sha256:7`. */
  async pcrRead(selection: PcrSelection): Promise<PcrValues> {
    const values: PcrValues = new Map();
    const wanted = selectionOrder(selection);
    for (let round = 0; values.size < wanted.length; round++) {
      const missing: PcrSelection = selection
        .map((entry) => ({ bank: entry.bank, pcrs: entry.pcrs.filter((pcr) => !values.has(pcrKey(entry.bank, pcr))) }))
        .filter((entry) => entry.pcrs.length > 0);
      const { parameters } = await this.execute(TPM_CC.PCR_Read, { parameters: marshalPcrSelection(missing).finish() });
      parameters.u32(); // pcrUpdateCounter
      const returned = unmarshalPcrSelection(parameters);
      const count = parameters.u32();
      const digests: Buffer[] = [];
      for (let i = 0; i < count; i++) digests.push(parameters.sized());
      const order = returned.flatMap((entry) => entry.pcrs.map((pcr) => ({ bank: entry.bank, pcr })));
      if (order.length !== digests.length) throw new TpmFormatError(`PCR_Read returned ${digests.length} digests for ${order.length} PCRs`);
      if (order.length === 0 || round > 8) {
        const left = missing.map((entry) => `${entry.bank}:${entry.pcrs.join(',')}`).join('+');
        throw new TpmFormatError(`the TPM returned no value for ${left} (bank not allocated?)`);
      }
      order.forEach((entry, i) => {
        if (typeof entry.bank === 'number') throw new TpmFormatError(`PCR_Read returned unknown bank 0x${entry.bank.toString(16)}`);
        values.set(pcrKey(entry.bank, entry.pcr), digests[i]!);
      });
    }
    return values;
  }

  /** TPM2_PCR_Extend at locality 0 with the platform's empty auth; one digest per bank. */
  async pcrExtend(pcr: number, digests: { bank: BankName; digest: Buffer }[]): Promise<void> {
    const parameters = new Writer().u32(digests.length);
    for (const { bank, digest } of digests) {
      if (digest.length !== BANKS[bank].size) throw new TpmFormatError(`a ${bank} digest has ${BANKS[bank].size} bytes, not ${digest.length}`);
      parameters.u16(BANKS[bank].alg).bytes(digest);
    }
    await this.execute(TPM_CC.PCR_Extend, { handles: [pcr], sessions: [passwordSession()], parameters: parameters.finish() });
  }

  /**
   * TPM2_PCR_Event (Part 3 §22.8) at locality 0 with the platform's empty auth: the TPM hashes `eventData` itself and
   * extends `pcr` in every bank where it is allocated. Returns the digests it computed (TPML_DIGEST_VALUES): one per
   * hash algorithm the TPM implements, allocated or not (the reference implementation, PCR_Event.c, returns
   * HASH_COUNT of them), so they do not tell which banks were extended.
   */
  async pcrEvent(pcr: number, eventData: Buffer): Promise<{ bank: BankName | number; digest: Buffer }[]> {
    if (eventData.length > MAX_EVENT_SIZE) throw new TpmFormatError(`PCR_Event data of ${eventData.length} bytes (a TPM2B_EVENT holds at most ${MAX_EVENT_SIZE})`);
    const { parameters } = await this.execute(TPM_CC.PCR_Event, { handles: [pcr], sessions: [passwordSession()], parameters: new Writer().sized(eventData).finish() });
    const digests = unmarshalDigestValues(parameters);
    parameters.end();
    if (digests.length === 0) throw new TpmFormatError('PCR_Event returned no digest');
    return digests;
  }

  /** An unbound, unsalted SHA-256 policy session (or trial session); returns the handle and nonceTPM. */
  async startPolicySession(trial = false): Promise<{ handle: number; nonceTpm: Buffer }> {
    const parameters = new Writer()
      .sized(randomBytes(16)) // nonceCaller
      .sized(Buffer.alloc(0)) // encryptedSalt
      .u8(trial ? 0x03 : TPM_SE_POLICY)
      .u16(TPM_ALG.NULL) // symmetric
      .u16(TPM_ALG.SHA256)
      .finish();
    const { handles, parameters: out } = await this.execute(TPM_CC.StartAuthSession, {
      handles: [TPM_RH_NULL, TPM_RH_NULL], parameters, responseHandles: 1,
    });
    return { handle: handles[0]!, nonceTpm: out.sized() };
  }

  /** PolicyPCR with an empty pcrDigest: the TPM uses the PCRs' current values. */
  async policyPcr(session: number, selection: PcrSelection): Promise<void> {
    const parameters = new Writer().sized(Buffer.alloc(0));
    marshalPcrSelection(selection, parameters);
    await this.execute(TPM_CC.PolicyPCR, { handles: [session], parameters: parameters.finish() });
  }

  async policyCommandCode(session: number, code: number): Promise<void> {
    await this.execute(TPM_CC.PolicyCommandCode, { handles: [session], parameters: new Writer().u32(code).finish() });
  }

  async policyAuthorize(session: number, approvedPolicy: Buffer, policyRef: Buffer, keyName: Buffer, ticket: VerifiedTicket): Promise<void> {
    const parameters = new Writer().sized(approvedPolicy).sized(policyRef).sized(keyName).bytes(marshalTicket(ticket)).finish();
    await this.execute(TPM_CC.PolicyAuthorize, { handles: [session], parameters });
  }

  /** PolicySigned with expiration 0; `signature` is a marshalled TPMT_SIGNATURE. */
  async policySigned(key: number, session: number, nonceTpm: Buffer, cpHash: Buffer, policyRef: Buffer, signature: Buffer): Promise<void> {
    const parameters = new Writer().sized(nonceTpm).sized(cpHash).sized(policyRef).u32(0).bytes(signature).finish();
    await this.execute(TPM_CC.PolicySigned, { handles: [key, session], parameters });
  }

  /**
   * TPM2_PolicyNV with the index as its own authorization (`authSession`: a policy session satisfying the index's
   * authPolicy for TPM_CC_PolicyNV). Throws TpmError with RC.POLICY when the comparison does not hold.
   */
  async policyNv(nvIndex: number, session: number, authSession: number, operandB: Buffer, offset: number, operation: number): Promise<void> {
    const parameters = new Writer().sized(operandB).u16(offset).u16(operation).finish();
    await this.execute(TPM_CC.PolicyNV, { handles: [nvIndex, nvIndex, session], sessions: [policyAuth(authSession)], parameters });
  }

  async policyCpHash(session: number, cpHash: Buffer): Promise<void> {
    await this.execute(TPM_CC.PolicyCpHash, { handles: [session], parameters: new Writer().sized(cpHash).finish() });
  }

  async policyGetDigest(session: number): Promise<Buffer> {
    const { parameters } = await this.execute(TPM_CC.PolicyGetDigest, { handles: [session] });
    return parameters.sized();
  }

  /** Loads a public key (no private part) into the owner hierarchy, so that VerifySignature yields a real ticket. */
  async loadExternal(marshalledPublic: Buffer): Promise<{ handle: number; name: Buffer }> {
    const parameters = new Writer().u16(0).sized(marshalledPublic).u32(TPM_RH_OWNER).finish();
    const { handles, parameters: out } = await this.execute(TPM_CC.LoadExternal, { parameters, responseHandles: 1 });
    return { handle: handles[0]!, name: out.sized() };
  }

  async verifySignature(key: number, digest: Buffer, signature: Buffer): Promise<VerifiedTicket> {
    const { parameters } = await this.execute(TPM_CC.VerifySignature, { handles: [key], parameters: new Writer().sized(digest).bytes(signature).finish() });
    return unmarshalTicket(parameters);
  }

  async flush(handle: number): Promise<void> {
    await this.execute(TPM_CC.FlushContext, { parameters: new Writer().u32(handle).finish() });
  }

  async nvReadPublic(index: number): Promise<{ public: NvPublic; name: Buffer }> {
    const { parameters } = await this.execute(TPM_CC.NV_ReadPublic, { handles: [index] });
    const publicArea = new Reader(parameters.sized(), 'TPM2B_NV_PUBLIC');
    const pub = unmarshalNvPublic(publicArea);
    publicArea.end();
    const name = parameters.sized();
    parameters.end();
    return { public: pub, name };
  }

  async nvDefineSpace(pub: NvPublic, ownerAuth: Buffer): Promise<void> {
    const parameters = new Writer().sized(Buffer.alloc(0)).sized(marshalNvPublic(pub)).finish();
    await this.execute(TPM_CC.NV_DefineSpace, { handles: [TPM_RH_OWNER], sessions: [passwordSession(ownerAuth)], parameters });
  }

  /**
   * NV_Read authorized by the index itself with a policy session. endSession: continueSession clear, so that the
   * TPM flushes the session when the read succeeds (Part 2 §8.4, TPMA_SESSION continueSession: no FlushContext).
   */
  async nvRead(index: number, size: number, session: number, options: { endSession?: boolean } = {}): Promise<Buffer> {
    const auth = policyAuth(session);
    const { parameters } = await this.execute(TPM_CC.NV_Read, {
      handles: [index, index], sessions: [options.endSession === true ? { ...auth, attributes: 0 } : auth], parameters: new Writer().u16(size).u16(0).finish(),
    });
    return parameters.sized();
  }

  async nvWrite(index: number, data: Buffer, session: number, offset = 0): Promise<void> {
    await this.execute(TPM_CC.NV_Write, { handles: [index, index], sessions: [policyAuth(session)], parameters: nvWriteParameters(data, offset) });
  }
}

/** Part 2, TPM2B_EVENT: its buffer holds at most 1024 bytes. */
export const MAX_EVENT_SIZE = 1024;

/**
 * TPML_DIGEST_VALUES (Part 2): count, then TPMT_HA (hashAlg, digest of that algorithm's size). A hash sealroot
 * has no bank name for is kept as its algorithm id (as in unmarshalPcrSelection) when its size is known; an unknown
 * size cannot be parsed past: refused.
 */
function unmarshalDigestValues(reader: Reader): { bank: BankName | number; digest: Buffer }[] {
  const count = reader.u32();
  if (count > 16) throw new TpmFormatError(`TPML_DIGEST_VALUES with ${count} entries`);
  const result: { bank: BankName | number; digest: Buffer }[] = [];
  for (let i = 0; i < count; i++) {
    const alg = reader.u16();
    const bank = bankByAlg(alg);
    const size = bank === undefined ? OTHER_HASH_SIZES.get(alg) : BANKS[bank].size;
    if (size === undefined) throw new TpmFormatError(`TPML_DIGEST_VALUES names hash algorithm 0x${alg.toString(16)}, whose digest size sealroot does not know`);
    if (result.some((entry) => entry.bank === (bank ?? alg))) throw new TpmFormatError(`TPML_DIGEST_VALUES names ${bankLabel(bank ?? alg)} twice`);
    result.push({ bank: bank ?? alg, digest: reader.bytes(size) });
  }
  return result;
}

/** NV_Write's parameter area (data, offset): also what its cpHash covers. */
export function nvWriteParameters(data: Buffer, offset = 0): Buffer {
  return new Writer().sized(data).u16(offset).finish();
}
