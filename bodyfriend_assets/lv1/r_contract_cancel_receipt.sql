-- Contract cancellation requests (해지접수).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: receipt_no
-- mode: incremental
-- driving: lv0.r_contract_cancel_receipt
-- lookback_days: 1
-- index: order_no
SELECT DISTINCT ON (receipt_no)
    btrim(s.receipt_no) AS receipt_no,
    lv1.clean_text(s.order_no) AS order_no,
    lv1.clean_text(s.cust_no) AS cust_no,
    lv1.yyyymmdd_date(s.receipt_dt) AS receipt_dt,
    lv1.clean_text(s.cancel_type_cd) AS cancel_type_cd,
    cancel_type.minor_nm AS cancel_type_nm,
    lv1.clean_text(s.cancel_rsn_cd) AS cancel_rsn_cd,
    cancel_rsn.minor_nm AS cancel_rsn_nm,
    lv1.clean_text(s.cancel_rsn_desc) AS cancel_rsn_desc,
    lv1.yyyymmdd_date(s.cancel_hope_dt) AS cancel_hope_dt,
    s.penalty_amt,
    s.refund_amt,
    lv1.yyyymmdd_date(s.collect_dt) AS collect_dt,
    lv1.clean_text(s.proc_status_cd) AS proc_status_cd,
    proc_status.minor_nm AS proc_status_nm,
    lv1.clean_text(s.proc_user_id) AS proc_user_id,
    lv1.clean_text(s.bank_cd) AS bank_cd,
    bank.minor_nm AS bank_nm,
    lv1.clean_text(s.acct_no) AS acct_no,
    lv1.clean_text(s.acct_holder_nm) AS acct_holder_nm,
    lv1.clean_text(s.remark) AS remark,
    lv1.clean_text(s.insrt_user_id) AS insrt_user_id,
    s.insrt_dt,
    lv1.clean_text(s.updt_user_id) AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.r_contract_cancel_receipt AS s
LEFT JOIN lv1.codes('R3004') AS cancel_type ON cancel_type.minor_cd = btrim(s.cancel_type_cd)  -- 해지유형
LEFT JOIN lv1.codes('R3002') AS cancel_rsn ON cancel_rsn.minor_cd = btrim(s.cancel_rsn_cd)  -- 해지사유
LEFT JOIN lv1.codes('R2002') AS proc_status ON proc_status.minor_cd = btrim(s.proc_status_cd)  -- 처리상태
LEFT JOIN lv1.codes('R1005') AS bank ON bank.minor_cd = btrim(s.bank_cd)  -- 은행
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY receipt_no, s.updt_dt DESC NULLS LAST
