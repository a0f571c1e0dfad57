// The hold page with Stripe: mount Stripe's card element, make a PaymentMethod in the browser (the card goes to
// Stripe only), post its id; after a 3-D Secure request, let Stripe.js ask the bank, then post the finish form
// (the server settles from Stripe's own word on the payment, whatever this script saw).
(function () {
  'use strict';

  function mountCard(form) {
    if (form.dataset.mounted || typeof Stripe === 'undefined') return;
    form.dataset.mounted = '1';
    const stripe = Stripe(form.dataset.publishableKey);
    const card = stripe.elements().create('card');
    card.mount('#card-element');
    const errors = document.getElementById('card-errors');
    const button = form.querySelector('button[type=submit]');
    form.addEventListener('submit', async function (event) {
      if (form.elements.payment_method.value) return;  // the id is in: this is the real submit
      event.preventDefault();
      button.disabled = true;
      errors.textContent = '';
      const result = await stripe.createPaymentMethod({type: 'card', card: card});
      if (!result || result.error) {
        errors.textContent = (result && result.error && result.error.message) || form.getAttribute('data-unreadable');
        button.disabled = false;
        return;
      }
      form.elements.payment_method.value = result.paymentMethod.id;
      form.submit();
    });
  }

  function confirmWithBank(box) {
    if (box.dataset.started || typeof Stripe === 'undefined') return;
    box.dataset.started = '1';
    const stripe = Stripe(box.dataset.publishableKey);
    const finish = document.getElementById('stripe-finish-form');
    stripe.confirmCardPayment(box.dataset.clientSecret).then(() => finish.submit(), () => finish.submit());
  }

  function start() {
    const form = document.getElementById('pay-form');
    if (form && form.classList.contains('stripe-pay')) mountCard(form);
    const box = document.getElementById('stripe-confirm');
    if (box) confirmWithBank(box);
  }

  document.addEventListener('DOMContentLoaded', start);
  document.addEventListener('htmx:load', start);  // the hold panel redrawn (a discount code applied)
})();
