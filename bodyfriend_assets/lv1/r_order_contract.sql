-- Rental and sales contracts (주문계약).
-- Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).
-- Indexed by cust_no: lv2.opportunity finds a changed account's contracts by it.
-- Each run upserts the rows lv0 changed in its days, and in the day before (lookback_days)
-- for rows lv0 filed late under their own, earlier day.
--
-- key: order_no
-- mode: incremental
-- driving: lv0.r_order_contract
-- lookback_days: 1
-- index: cust_no
SELECT DISTINCT ON (order_no)
    btrim(s.order_no) AS order_no,
    NULLIF(btrim(s.cust_no), '') AS cust_no,
    lv1.yyyymmdd_date(s.cont_dt) AS cont_dt,
    lv1.yyyymmdd_date(s.order_dt) AS order_dt,
    NULLIF(btrim(s.cont_type_cd), '') AS cont_type_cd,
    cont_type.minor_nm AS cont_type_nm,
    NULLIF(btrim(s.order_status_cd), '') AS order_status_cd,
    order_status.minor_nm AS order_status_nm,
    NULLIF(btrim(s.sales_chnl_cd), '') AS sales_chnl_cd,
    sales_chnl.minor_nm AS sales_chnl_nm,
    NULLIF(btrim(s.goods_cd), '') AS goods_cd,
    s.qty,
    NULLIF(btrim(s.cont_period_cd), '') AS cont_period_cd,
    cont_period.minor_nm AS cont_period_nm,
    s.rental_amt,
    s.discount_amt,
    s.discount_rate,
    s.reg_fee_amt,
    s.sale_amt,
    s.vat_amt,
    s.deposit_amt,
    s.free_month_cnt,
    NULLIF(btrim(s.promotion_cd), '') AS promotion_cd,
    NULLIF(btrim(s.gift_nm), '') AS gift_nm,
    NULLIF(btrim(s.pay_method_cd), '') AS pay_method_cd,
    pay_method.minor_nm AS pay_method_nm,
    NULLIF(btrim(s.bank_cd), '') AS bank_cd,
    bank.minor_nm AS bank_nm,
    NULLIF(btrim(s.acct_no), '') AS acct_no,
    NULLIF(btrim(s.acct_holder_nm), '') AS acct_holder_nm,
    NULLIF(btrim(s.card_co_cd), '') AS card_co_cd,
    card_co.minor_nm AS card_co_nm,
    NULLIF(btrim(s.card_no), '') AS card_no,
    NULLIF(btrim(s.pay_day), '') AS pay_day,
    lv1.yyyymmdd_date(s.first_pay_dt) AS first_pay_dt,
    s.credit_grade,
    lv1.yyyymmdd_date(s.credit_chk_dt) AS credit_chk_dt,
    lv1.yyyymmdd_date(s.inst_req_dt) AS inst_req_dt,
    lv1.yyyymmdd_date(s.inst_dt) AS inst_dt,
    lv1.yyyymmdd_date(s.rental_start_dt) AS rental_start_dt,
    lv1.yyyymmdd_date(s.end_dt) AS end_dt,
    NULLIF(btrim(s.inst_zip_cd), '') AS inst_zip_cd,
    NULLIF(btrim(s.inst_addr1), '') AS inst_addr1,
    NULLIF(btrim(s.inst_addr2), '') AS inst_addr2,
    NULLIF(btrim(s.rcv_nm), '') AS rcv_nm,
    lv1.phone_number(s.rcv_tel_no) AS rcv_tel_no,
    lv1.phone_number(s.rcv_hand_tel_no) AS rcv_hand_tel_no,
    NULLIF(btrim(s.sales_user_id), '') AS sales_user_id,
    NULLIF(btrim(s.manager_user_id), '') AS manager_user_id,
    NULLIF(btrim(s.lounge_cd), '') AS lounge_cd,
    NULLIF(btrim(s.sales_grp), '') AS sales_grp,
    NULLIF(btrim(s.sales_org), '') AS sales_org,
    NULLIF(btrim(s.item_group_cd), '') AS item_group_cd,
    lv1.yyyymmdd_date(s.cancel_dt) AS cancel_dt,
    NULLIF(btrim(s.cancel_rsn_cd), '') AS cancel_rsn_cd,
    cancel_rsn.minor_nm AS cancel_rsn_nm,
    NULLIF(btrim(s.inst_region_cd), '') AS inst_region_cd,
    inst_region.minor_nm AS inst_region_nm,
    NULLIF(btrim(s.mng_center_cd), '') AS mng_center_cd,
    mng_center.minor_nm AS mng_center_nm,
    NULLIF(btrim(s.approval_no), '') AS approval_no,
    lv1.yes_no(s.ownership_trans_yn) AS ownership_trans_yn,
    lv1.yyyymmdd_date(s.ownership_trans_dt) AS ownership_trans_dt,
    lv1.yes_no(s.sign_yn) AS sign_yn,
    lv1.yes_no(s.e_cont_yn) AS e_cont_yn,
    s.e_cont_doc_id,
    lv1.yes_no(s.happy_call_yn) AS happy_call_yn,
    lv1.yyyymmdd_date(s.happy_call_dt) AS happy_call_dt,
    lv1.yes_no(s.tax_invoice_yn) AS tax_invoice_yn,
    lv1.yes_no(s.corp_yn) AS corp_yn,
    lv1.yes_no(s.emp_sale_yn) AS emp_sale_yn,
    NULLIF(btrim(s.origin_order_no), '') AS origin_order_no,
    NULLIF(btrim(s.homeshop_order_no), '') AS homeshop_order_no,
    NULLIF(btrim(s.serial_no), '') AS serial_no,
    s.penalty_amt,
    s.unpaid_amt,
    s.tot_paid_amt,
    s.paid_cnt,
    s.overdue_cnt,
    s.commission_amt,
    s.cont_ver,
    s.cont_rate,
    NULLIF(btrim(s.remark), '') AS remark,
    NULLIF(btrim(s.delivery_memo), '') AS delivery_memo,
    NULLIF(btrim(s.order_memo), '') AS order_memo,
    s.crm_flag,
    lv1.yes_no(s.recontract_yn) AS recontract_yn,
    lv1.yes_no(s.dormant_yn) AS dormant_yn,
    lv1.yes_no(s.use_yn) AS use_yn,
    NULLIF(btrim(s.insrt_user_id), '') AS insrt_user_id,
    s.insrt_dt,
    NULLIF(btrim(s.updt_user_id), '') AS updt_user_id,
    s.updt_dt,
    s._partition
FROM lv0.r_order_contract AS s
LEFT JOIN lv1.code_master AS cont_type
    ON cont_type.major_cd = 'R1002' AND cont_type.minor_cd = btrim(s.cont_type_cd)  -- 계약유형
LEFT JOIN lv1.code_master AS order_status
    ON order_status.major_cd = 'R1001' AND order_status.minor_cd = btrim(s.order_status_cd)  -- 주문상태
LEFT JOIN lv1.code_master AS sales_chnl
    ON sales_chnl.major_cd = 'R1003' AND sales_chnl.minor_cd = btrim(s.sales_chnl_cd)  -- 판매채널
LEFT JOIN lv1.code_master AS cont_period
    ON cont_period.major_cd = 'R1007' AND cont_period.minor_cd = btrim(s.cont_period_cd)  -- 약정기간
LEFT JOIN lv1.code_master AS pay_method
    ON pay_method.major_cd = 'R1004' AND pay_method.minor_cd = btrim(s.pay_method_cd)  -- 결제수단
LEFT JOIN lv1.code_master AS bank
    ON bank.major_cd = 'R1005' AND bank.minor_cd = btrim(s.bank_cd)  -- 은행
LEFT JOIN lv1.code_master AS card_co
    ON card_co.major_cd = 'R1006' AND card_co.minor_cd = btrim(s.card_co_cd)  -- 카드사
LEFT JOIN lv1.code_master AS cancel_rsn
    ON cancel_rsn.major_cd = 'R3002' AND cancel_rsn.minor_cd = btrim(s.cancel_rsn_cd)  -- 해지사유
LEFT JOIN lv1.code_master AS inst_region
    ON inst_region.major_cd = 'C1004' AND inst_region.minor_cd = btrim(s.inst_region_cd)  -- 시도
LEFT JOIN lv1.code_master AS mng_center
    ON mng_center.major_cd = 'R2005' AND mng_center.minor_cd = btrim(s.mng_center_cd)  -- 서비스센터
WHERE s._partition BETWEEN :partition_start AND :partition_end
ORDER BY order_no, s.updt_dt DESC NULLS LAST
