-- Relocation requests for installed products (이전설치접수).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
--
-- key: receipt_no
-- mode: full
SELECT DISTINCT ON (receipt_no)
    btrim(s.receipt_no) AS receipt_no,
    NULLIF(btrim(s.order_no), '') AS order_no,
    NULLIF(btrim(s.cust_no), '') AS cust_no,
    lv1.yyyymmdd_date(s.receipt_dt) AS receipt_dt,
    NULLIF(btrim(s.move_type_cd), '') AS move_type_cd,
    move_type.minor_nm AS move_type_nm,
    lv1.yyyymmdd_date(s.move_hope_dt) AS move_hope_dt,
    NULLIF(btrim(s.old_zip_cd), '') AS old_zip_cd,
    NULLIF(btrim(s.old_addr1), '') AS old_addr1,
    NULLIF(btrim(s.old_addr2), '') AS old_addr2,
    NULLIF(btrim(s.new_zip_cd), '') AS new_zip_cd,
    NULLIF(btrim(s.new_addr1), '') AS new_addr1,
    NULLIF(btrim(s.new_addr2), '') AS new_addr2,
    s.move_fee_amt,
    NULLIF(btrim(s.proc_status_cd), '') AS proc_status_cd,
    proc_status.minor_nm AS proc_status_nm,
    NULLIF(btrim(s.engineer_user_id), '') AS engineer_user_id,
    NULLIF(btrim(s.remark), '') AS remark,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt
FROM lv0.r_contract_move_receipt AS s
LEFT JOIN lv1.code_master AS move_type
    ON move_type.major_cd = 'R3003' AND move_type.minor_cd = btrim(s.move_type_cd)  -- 이전유형
LEFT JOIN lv1.code_master AS proc_status
    ON proc_status.major_cd = 'R2002' AND proc_status.minor_cd = btrim(s.proc_status_cd)  -- 처리상태
ORDER BY receipt_no, s.updt_dt DESC NULLS LAST
